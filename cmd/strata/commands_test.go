package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/internal/syncbuf"
	"github.com/stratacache/strata/l2"
)

func decodeReport(t *testing.T, s string) inspectReport {
	t.Helper()
	var r inspectReport
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("inspect -json printed %q: %v", s, err)
	}
	return r
}

// TestUsageErrors: bad flags and arguments exit 2 with a message naming
// them; -h prints the help on stdout and exits 0.
func TestUsageErrors(t *testing.T) {
	t.Setenv(SigningKeysEnv, "")
	bp := "redis://127.0.0.1:1" // never dialled: usage is checked first
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: strata <command>"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"invalidate", "-backplane", bp, "-key", "k"}, "-cache is required"},
		{[]string{"invalidate", "-cache", "c", "-key", "k"}, "-backplane"},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c"}, "nothing to invalidate"},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c", "-key", ""}, `invalid value "" for flag -key: must not be empty`},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c", "-key", "k", "extra"}, `unexpected argument "extra"`},
		{[]string{"invalidate", "-backplane", bp, "-cache", strings.Repeat("x", 81), "-key", "k"}, "at most 80"},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c", "-key", "k", "-timeout", "0s"}, "-timeout 0s must be positive"},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c", "-key", "k", "-changed-at", "yesterday"}, `invalid value "yesterday" for flag -changed-at`},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c", "-key", "k", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"invalidate", "-backplane", bp, "-cache", "c", "-key", "k", "-keys-file", "/nonexistent/keys"}, "-keys-file: open /nonexistent/keys"},
		{[]string{"watch", "-cache", "c"}, "-backplane is required"},
		{[]string{"watch", "-backplane", bp}, "-cache is required"},
		{[]string{"watch", "-backplane", bp, "-cache", "c", "-n", "-1"}, "-n -1 must not be negative"},
		{[]string{"inspect", "-l2", bp}, "KEY is required"},
		{[]string{"inspect", "k"}, "-l2 is required"},
		{[]string{"inspect", "-l2", bp, "a", "b"}, "one KEY only"},
	} {
		r := cli(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("strata %q: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	for _, cmd := range []string{"invalidate", "watch", "inspect"} {
		r := cli(t, cmd, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: strata "+cmd) || r.stderr != "" {
			t.Errorf("strata %s -h: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", cmd, r.code, r.stdout, r.stderr)
		}
	}
}

// TestSigningKeyErrors: a malformed or short key exits 2 naming the key by
// position and never printing it.
func TestSigningKeyErrors(t *testing.T) {
	secret := "zz" + strings.Repeat("ab", 20)
	for _, tc := range []struct{ keys, want string }{
		{secret, "key 1 is not hexadecimal"},
		{hex.EncodeToString(make([]byte, 32)) + ",abcd", "key 2 is 2 bytes, want at least 16"},
		{"base64:***", "key 1 is not valid base64"},
	} {
		t.Setenv(SigningKeysEnv, tc.keys)
		r := cli(t, "invalidate", "-backplane", "redis://127.0.0.1:1", "-cache", "c", "-key", "k")
		if r.code != exitUsage || !strings.Contains(r.stderr, "$"+SigningKeysEnv+": "+tc.want) || strings.Contains(r.stderr, secret) {
			t.Errorf("keys %q: exit %d, stderr %q; want exit 2 and %q, no key printed", tc.keys, r.code, r.stderr, tc.want)
		}
	}
	keys, err := parseKeys("# rotation\n" + hex.EncodeToString([]byte("0123456789abcdef")) + "\n  base64:MDEyMzQ1Njc4OWFiY2RlZmdo , " + strings.Repeat("00", 32) + "\n")
	if err != nil || len(keys) != 3 || string(keys[0]) != "0123456789abcdef" || string(keys[1]) != "0123456789abcdefgh" || len(keys[2]) != 32 {
		t.Errorf("parseKeys of a keys file = %q, %v; want 3 keys in order", keys, err)
	}
}

// TestUnreachable: a wrong URL or a server that does not answer exits 1
// with a message naming the flag and the URL.
func TestUnreachable(t *testing.T) {
	t.Setenv(SigningKeysEnv, "")
	good := redisURL(t)
	down := "redis://" + redistest.Unreachable
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"invalidate", "-backplane", down, "-cache", "c", "-key", "k"}, []string{"-backplane:", redistest.Unreachable, "connection refused"}},
		{[]string{"invalidate", "-backplane", good, "-l2", down, "-cache", "c", "-key", "k"}, []string{"-l2:", redistest.Unreachable}},
		{[]string{"invalidate", "-backplane", "nats://" + redistest.Unreachable, "-cache", "c", "-key", "k", "-timeout", "3s"}, []string{"-backplane:", redistest.Unreachable}},
		{[]string{"invalidate", "-backplane", "bogus://host", "-cache", "c", "-key", "k"}, []string{`unknown scheme "bogus"`, "known: amqp"}},
		{[]string{"invalidate", "-backplane", "redis://127.0.0.1:6379?colour=red", "-cache", "c", "-key", "k"}, []string{"colour"}},
		{[]string{"watch", "-backplane", down, "-cache", "c"}, []string{"-backplane:", redistest.Unreachable}},
		{[]string{"inspect", "-l2", down, "k"}, []string{"-l2:", redistest.Unreachable}},
		{[]string{"inspect", "-l2", "bogus://h", "k"}, []string{`unknown scheme "bogus"`}},
	} {
		r := cli(t, tc.args...)
		ok := r.code == exitFailed
		for _, w := range tc.want {
			ok = ok && strings.Contains(r.stderr, w)
		}
		if !ok {
			t.Errorf("strata %q: exit %d, stderr %q; want exit 1 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestInvalidateReportsSwallowedFailures: core's Remove returns neither
// an L2 failure nor a failed publish (a node queues them for auto-recovery);
// the command must still exit 1, naming what failed. The failing server is
// a private Redis whose writes are paused (CLIENT PAUSE WRITE): PING works,
// so it opens, but the tombstone's script and PUBLISH wait.
func TestInvalidateReportsSwallowedFailures(t *testing.T) {
	t.Setenv(SigningKeysEnv, "")
	paused := "redis://" + privateRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(paused, "redis://")})
	defer rc.Close()
	if err := rc.Do(context.Background(), "CLIENT", "PAUSE", "30000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer rc.Do(context.Background(), "CLIENT", "UNPAUSE")
	good := redisURL(t)
	for _, tc := range []struct {
		name, bp, l2 string
		want         string
	}{
		{"l2", good, paused, `L2 write of "k" failed`},
		{"publish", paused, "", `publish of remove "k" failed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"invalidate", "-backplane", tc.bp, "-cache", "paused-" + redistest.Unique(), "-key", "k", "-timeout", "1s"}
			if tc.l2 != "" {
				args = append(args, "-l2", tc.l2)
			}
			start := time.Now()
			r := cli(t, args...)
			if r.code != exitFailed || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "FAILED: 0 of 1 invalidations") {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the command took %v with -timeout 1s", d)
			}
		})
	}
	e := newEnv(t, "redis")
	if r := cli(t, e.args("invalidate", "-key", "fine", "-key", "__strata:x")...); r.code != exitFailed ||
		!strings.Contains(r.stderr, `-key "__strata:x"`) || !strings.Contains(r.stdout, `removed key "fine"`) {
		t.Errorf("reserved key: exit %d, stdout %q, stderr %q; want exit 1 naming the key, the other one done", r.code, r.stdout, r.stderr)
	}
}

// privateRedis starts a redis-server of the test's own on a free loopback
// port, stopped when the test ends.
func privateRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not in $PATH, and CI=true forbids skipping: %v", err)
		}
		t.Skipf("skipping: redis-server is not in $PATH: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, "the private redis-server to answer", func() bool {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err() == nil
	})
	return addr
}

// TestWatchPrintsMessages: watch prints each message of a node and of the
// CLI live, decoded, and stops at -n or when its context ends.
func TestWatchPrintsMessages(t *testing.T) {
	for _, kind := range backplaneKinds {
		t.Run(kind, func(t *testing.T) {
			t.Setenv(SigningKeysEnv, "")
			e := newEnv(t, kind)
			a := e.node(t)
			out, errb, done := startWatch(t, "watch", "-backplane", e.bpURL, "-cache", e.name, "-n", "3")
			ctx := context.Background()
			if err := a.Remove(ctx, "user:42"); err != nil {
				t.Fatal(err)
			}
			if err := a.RemoveByTag(ctx, "tenant:7"); err != nil {
				t.Fatal(err)
			}
			if r := cli(t, e.args("invalidate", "-clear", "-expire", "-instance-id", "ops-laptop")...); r.code != 0 {
				t.Fatalf("invalidate: exit %d", r.code)
			}
			code := <-done
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if code != 0 || len(lines) != 3 {
				t.Fatalf("watch -n 3: exit %d, %d lines %q (stderr %q); want 0 and 3 lines", code, len(lines), lines, errb.String())
			}
			wants := []string{
				`remove       key="user:42" source="` + a.InstanceID() + `/`,
				`remove_tag   tag="tenant:7" source="` + a.InstanceID() + `/`,
				`clear_expire source="ops-laptop/`,
			}
			for i, w := range wants {
				if !strings.Contains(lines[i], w) || !strings.Contains(lines[i], " delay=") || !strings.Contains(lines[i], "sig=unsigned") {
					t.Errorf("line %d = %q, want it to hold %q, a delay and sig=unsigned", i, lines[i], w)
				}
			}
		})
	}
}

// startWatch runs watch in-process until it exits by itself or the test
// ends, once it is subscribed.
func startWatch(t *testing.T, args ...string) (out, errb *syncbuf.Buffer, done <-chan int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, errb = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	ch := make(chan int, 1)
	go func() { ch <- run(ctx, args, out, errb) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Error("watch did not stop within 10s of its context's end")
		}
	})
	eventually(t, "watch to subscribe", func() bool { return strings.Contains(errb.String(), "watching ") })
	// Wait for the first code to arrive on ch in the caller.
	relay := make(chan int, 1)
	go func() {
		select {
		case code := <-ch:
			ch <- code // for the cleanup
			relay <- code
		case <-ctx.Done():
		}
	}()
	return out, errb, relay
}

// TestWatchVerifiesSignatures: with keys, a message signed with them shows
// sig=valid, one signed with another key REJECTED; -json carries the same.
func TestWatchVerifiesSignatures(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	e := newEnv(t, "redis")
	t.Setenv(SigningKeysEnv, "")
	plainOut, _, plainDone := startWatch(t, "watch", "-backplane", e.bpURL, "-cache", e.name, "-n", "2")
	t.Setenv(SigningKeysEnv, hex.EncodeToString(key))
	out, _, done := startWatch(t, "watch", "-backplane", e.bpURL, "-cache", e.name, "-n", "2", "-json")
	if r := cli(t, e.args("invalidate", "-key", "good")...); r.code != 0 {
		t.Fatalf("signed invalidate: exit %d", r.code)
	}
	t.Setenv(SigningKeysEnv, "base64:"+b64(other))
	if r := cli(t, e.args("invalidate", "-key", "forged")...); r.code != 0 {
		t.Fatalf("invalidate with the other key: exit %d", r.code)
	}
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d", code)
	}
	var lines []watchLine
	for _, s := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l watchLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("watch -json printed %q: %v", s, err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	if l := lines[0]; l.Key != "good" || l.Signature != "valid" || l.Rejected || l.Action != "remove" || l.Seq != 1 || l.DelayNS <= 0 {
		t.Errorf("signed message printed as %+v", l)
	}
	if l := lines[1]; l.Key != "forged" || l.Signature != "bad" || !l.Rejected || !strings.Contains(l.Error, "signature matches none") {
		t.Errorf("message signed with another key printed as %+v", l)
	}
	// Without keys, both decode, unverified.
	if code := <-plainDone; code != 0 {
		t.Fatalf("watch without keys: exit %d", code)
	}
	plain := strings.Split(strings.TrimSpace(plainOut.String()), "\n")
	if len(plain) != 2 || !strings.Contains(plain[0], `key="good"`) || !strings.Contains(plain[1], `key="forged"`) ||
		strings.Count(plainOut.String(), "sig=unverified") != 2 || strings.Contains(plainOut.String(), "REJECTED") {
		t.Errorf("watch without keys printed %q, want both messages, sig=unverified", plain)
	}
}

// TestInspect prints a value's envelope and a tombstone's.
func TestInspect(t *testing.T) {
	e := newEnv(t, "redis")
	a := e.node(t)
	ctx := context.Background()
	err := core.Set(ctx, a, "profile:42", map[string]int{"id": 42}, core.WithTags("tenant:7", "profile"),
		core.WithDuration(time.Minute), core.WithFailSafe(2*time.Hour, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r := cli(t, "inspect", "-l2", e.l2URL, "-cache", e.name, "-key-prefix", e.prefix, "profile:42")
	for _, w := range []string{
		`key            "profile:42"`, `store key      "` + e.prefix + `profile:42"`, "kind           value",
		"fail-safe      yes", `tags           "tenant:7", "profile"`, `value          {"id":42}`, "(value 9 bytes)", "store expiry   ",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("inspect output lacks %q:\n%s", w, r.stdout)
		}
	}
	r = cli(t, "inspect", "-l2", e.l2URL, "-key-prefix", e.prefix, "-json", "profile:42")
	rep := decodeReport(t, r.stdout)
	env, _ := e.l2Envelope(t, "profile:42")
	if r.code != 0 || rep.Kind != "value" || rep.Version != env.Created || !rep.FailSafe || rep.ValueText == nil || *rep.ValueText != `{"id":42}` ||
		rep.Expires.Sub(rep.VersionTime).Round(time.Second) != time.Minute || rep.StoreExpires == nil || time.Until(*rep.StoreExpires) < 110*time.Minute {
		t.Errorf("inspect -json = %+v (exit %d)", rep, r.code)
	}

	if r := cli(t, e.args("invalidate", "-key", "profile:42")...); r.code != 0 {
		t.Fatal("invalidate failed")
	}
	r = cli(t, "inspect", "-l2", e.l2URL, "-key-prefix", e.prefix, "-json", "profile:42")
	if rep := decodeReport(t, r.stdout); r.code != 0 || rep.Kind != "tombstone" || rep.Version <= env.Created || rep.ValueBytes != 0 {
		t.Errorf("inspect of the removed key = %+v (exit %d), want a newer tombstone", rep, r.code)
	}
	if r := cli(t, "inspect", "-l2", e.l2URL, "-key-prefix", e.prefix, "missing"); r.code != exitFailed || !strings.Contains(r.stderr, "no entry under") {
		t.Errorf("inspect of a missing key: exit %d, stderr %q", r.code, r.stderr)
	}
	store, _ := l2.Open(ctx, e.l2URL)
	defer store.Close()
	_ = store.Set(ctx, e.prefix+"garbage", []byte("hello"), time.Minute)
	if r := cli(t, "inspect", "-l2", e.l2URL, "-key-prefix", e.prefix, "garbage"); r.code != exitFailed || !strings.Contains(r.stderr, "not a strata entry") {
		t.Errorf("inspect of foreign bytes: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestBinary builds the command and runs it as a user would: watch until
// SIGINT, invalidate, inspect, exit statuses included. It builds with -race
// when the test binary has it: the packages go test compiled for the
// tests are then reused, where a plain build compiled the command's whole
// dependency graph (and the standard library) a second time, without it,
// on an empty build cache.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	e := newEnv(t, "redis")
	bin := filepath.Join(t.TempDir(), "strata")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	environ := append(os.Environ(), SigningKeysEnv+"=")

	watch := exec.Command(bin, "watch", "-backplane", e.bpURL, "-cache", e.name)
	watch.Env = environ
	var wout, werr syncbuf.Buffer
	watch.Stdout, watch.Stderr = &wout, &werr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill() })
	eventually(t, "strata watch to subscribe", func() bool { return strings.Contains(werr.String(), "watching ") })

	a, b := e.node(t), e.node(t)
	seed(t, a, b, []string{"bin"})
	inv := exec.Command(bin, e.args("invalidate", "-key", "bin")...)
	inv.Env = environ
	out, err := inv.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `removed key "bin"`) {
		t.Fatalf("strata invalidate: %v\n%s", err, out)
	}
	for _, c := range []*core.Cache{a, b} {
		eventually(t, "the nodes to drop bin", func() bool { return !served(t, c, "bin") })
	}
	eventually(t, "strata watch to print the message", func() bool { return strings.Contains(wout.String(), `remove       key="bin"`) })
	if err := watch.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := watch.Wait(); err != nil {
		t.Errorf("strata watch after SIGINT: %v (want exit 0); stderr %s", err, werr.String())
	}

	insp := exec.Command(bin, "inspect", "-l2", e.l2URL, "-key-prefix", e.prefix, "bin")
	out, err = insp.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kind           tombstone") {
		t.Errorf("strata inspect: %v\n%s", err, out)
	}
	bad := exec.Command(bin, "invalidate", "-backplane", "redis://"+redistest.Unreachable, "-cache", "c", "-key", "k")
	bad.Env = environ
	out, err = bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Contains(string(out), "pool.go") {
		t.Errorf("strata invalidate on an unreachable backplane: %v, want exit 1 and one message:\n%s", err, out)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestInvalidateChangedAtAndKeysFile: -changed-at gives the tombstone a
// version no older than the source's time (here ahead of this clock), and
// -keys-file signs as the nodes expect: a node with the key applies the
// message.
func TestInvalidateChangedAtAndKeysFile(t *testing.T) {
	t.Setenv(SigningKeysEnv, "not even hex") // -keys-file wins
	key := []byte("0123456789abcdef0123456789abcdef")
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("# signing key\n"+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "redis")
	a, b := e.node(t, key), e.node(t, key)
	seed(t, a, b, []string{"signed"})
	at := time.Now().Add(3 * time.Second)
	r := cli(t, e.args("invalidate", "-keys-file", file, "-key", "signed", "-changed-at", at.Format(time.RFC3339Nano))...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	env, found := e.l2Envelope(t, "signed")
	if !found || env.Flags&l2.FlagTombstone == 0 || env.Created < at.UnixNano() {
		t.Errorf("tombstone %+v (found %v), want version >= %d (-changed-at)", env, found, at.UnixNano())
	}
	for _, c := range []*core.Cache{a, b} {
		eventually(t, "the signed message to be applied", func() bool { return !inL1(t, c, "signed") })
		if s := c.Stats(); s.BackplaneRejected != 0 {
			t.Errorf("a node rejected %d messages signed with its key", s.BackplaneRejected)
		}
	}
	if r := cli(t, e.args("invalidate", "-keys-file", file, "-key", "x", "-changed-at", fmt.Sprint(at.UnixNano()))...); r.code != 0 {
		t.Errorf("-changed-at in Unix ns: exit %d: %s", r.code, r.stderr)
	}
}
