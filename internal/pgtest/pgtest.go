// Package pgtest starts private PostgreSQL servers for tests that need
// settings the shared server (127.0.0.1:5432) does not have, such as
// wal_level=logical for change data capture. Each server is a fresh
// initdb in a temporary directory, listens on a free loopback port only,
// runs as the postgres user when the test runs as root (initdb and postgres
// refuse root), trusts every local connection, and is stopped and removed
// by Stop (or by the test's cleanup with Start). The postmaster is told to
// shut down at once if the process that started it dies, so a killed test
// leaves no server behind.
//
// The binaries come from $STRATA_PG_BIN, or the newest
// /usr/lib/postgresql/*/bin. When they are missing, Start skips the test,
// or fails it when $CI is "true".
//
// Tests that need no special settings use the shared server instead:
// SharedURL gives its address ($STRATA_POSTGRES_URL), Table a table of the
// test's own, dropped when the test ends.
package pgtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Options adjust a server. The zero value is a server with wal_level=logical.
type Options struct {
	// WalLevel is the wal_level setting: "logical" (default), "replica" or
	// "minimal".
	WalLevel string
	// Settings are more -c name=value settings, applied after the defaults
	// (which they may override).
	Settings map[string]string
}

// Server is one running private PostgreSQL.
type Server struct {
	// Port is the loopback TCP port it listens on.
	Port int
	// Dir is the temporary directory holding its data directory, its
	// socket and its log (Dir/postgres.log).
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
}

// DefaultSettings are the settings every server starts with: small, fast
// (no fsync: a test's data need not survive a crash of the machine),
// logical replication on, and wal_sender_timeout at 5s so that a dead
// replication client is noticed quickly.
var DefaultSettings = map[string]string{
	"listen_addresses":      "127.0.0.1",
	"max_connections":       "50",
	"shared_buffers":        "32MB",
	"fsync":                 "off",
	"full_page_writes":      "off",
	"max_wal_senders":       "10",
	"max_replication_slots": "10",
	"wal_sender_timeout":    "5s",
	"log_min_messages":      "warning",
}

// Start starts a server for the test and stops it when the test ends. When
// PostgreSQL is not installed it skips the test, or fails it when $CI is
// "true"; any other failure fails the test.
func Start(tb testing.TB, o *Options) *Server {
	tb.Helper()
	if _, err := BinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("pgtest: %v, and CI=true forbids skipping", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	s, err := StartServer(o)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// BinDir returns the directory of initdb and postgres: $STRATA_PG_BIN, or
// the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv("STRATA_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL binaries: set STRATA_PG_BIN to the directory of initdb and postgres (none in /usr/lib/postgresql/*/bin)")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// StartServer starts a server; the caller must Stop it. TestMain functions
// and programs use it; tests use Start.
func StartServer(o *Options) (*Server, error) {
	if o == nil {
		o = &Options{}
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "strata-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	settings := maps.Clone(DefaultSettings)
	settings["wal_level"] = cmp.Or(o.WalLevel, "logical")
	settings["unix_socket_directories"] = dir
	for k, v := range o.Settings {
		settings[k] = v
	}
	// A port found free may be taken before postgres binds it: try a few.
	for try := 0; ; try++ {
		s, err := start(bin, dir, data, cred, settings)
		if err == nil {
			return s, nil
		}
		if try == 4 || !strings.Contains(err.Error(), "could not") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func start(bin, dir, data string, cred *syscall.Credential, settings map[string]string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	settings["port"] = strconv.Itoa(port)
	args := []string{"-D", data}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Pdeathsig: if this process dies, the postmaster gets SIGQUIT (an
	// immediate shutdown) instead of living on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: postgres: %w", err)
	}
	s := &Server{Port: port, Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgconn.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("pgtest: postgres exited at start: could not start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("pgtest: postgres did not accept connections within 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL returns the URL of database db on the server, as user postgres.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

// Stop shuts the server down (fast shutdown: sessions are ended), waits
// for it (at most 15s, then kills it) and removes its directory.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	var err error
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.kill()
		err = errors.New("pgtest: postgres did not stop within 15s; killed")
	}
	return errors.Join(err, os.RemoveAll(s.Dir))
}

func (s *Server) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// credential returns the postgres user's ids when running as root (initdb
// and postgres refuse root), nil otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
