package scale

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
)

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverProcess is the local server process listening on a TCP port, found
// through /proc (Linux, and only when this process may read the server's
// file descriptors: same user or root).
type serverProcess struct{ pid int }

// findServer returns the process listening on 127.0.0.1:port or *:port, or
// an error saying why it cannot tell.
func findServer(port int) (*serverProcess, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listeningInodes(f, port, inodes); err != nil {
			return nil, err
		}
	}
	if len(inodes) == 0 {
		return nil, fmt.Errorf("no socket listens on port %d", port)
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			pid, err := strconv.Atoi(strings.Split(fd, "/")[2])
			if err != nil {
				return nil, err
			}
			return &serverProcess{pid: pid}, nil
		}
	}
	return nil, fmt.Errorf("the process listening on port %d is not readable here", port)
}

// listeningInodes adds to inodes the socket inodes of file (a /proc/net/tcp
// table) in state LISTEN on port.
func listeningInodes(file string, port int, inodes map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	suffix := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && strings.HasSuffix(fields[1], suffix) && fields[3] == "0A" {
			inodes[fields[9]] = true
		}
	}
	return sc.Err()
}

// cpu returns the CPU time (user and system, all threads) the server has
// used, at the kernel's clock-tick resolution (10 ms on most kernels).
func (p *serverProcess) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64) // field 14 of stat
	stime, _ := strconv.ParseInt(fields[12], 10, 64) // field 15
	const tick = 10 * time.Millisecond               // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}

// serverOf returns the process of the server the backplane kind talks
// to, or nil (with the reason logged) when it cannot be read here.
func serverOf(tb testing.TB, kind string) *serverProcess {
	tb.Helper()
	var hostPort string
	switch kind {
	case "redis":
		hostPort = redistest.Addr(tb)
	case "nats":
		hostPort = natstest.HostPort(natstest.URL(tb), "4222")
	case "amqp":
		hostPort = natstest.HostPort(rabbittest.URL(tb), "5672")
	}
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		tb.Logf("no server CPU figures: %v", err)
		return nil
	}
	n, _ := strconv.Atoi(port)
	p, err := findServer(n)
	if err != nil {
		tb.Logf("no server CPU figures: %v", err)
		return nil
	}
	return p
}
