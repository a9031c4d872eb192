// Package examples_test runs every example program as a user would: each is
// built (with the race detector when the tests have it) and run with a
// bounded time, and its exit status and the lines that say it worked are
// checked. A directory added under examples/ without a case here fails
// TestEveryExampleHasACase.
package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/pgtest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/internal/syncbuf"
)

// examples is every directory under examples/ that holds a program, with
// the test that runs it.
var examples = map[string]func(t *testing.T, bin string){
	"quickstart": testQuickstart,
	"multinode":  testMultinode,
	"coherence":  testCoherence,
	"bench":      testBench,
	"jaeger":     testJaeger,
	"profileapi": testProfileAPI,
}

func TestEveryExampleHasACase(t *testing.T) {
	for _, dir := range exampleDirs(t) {
		if examples[dir] == nil {
			t.Errorf("examples/%s has no case in examples_test.go: add one that runs it", dir)
		}
	}
}

func TestExamples(t *testing.T) {
	bins := build(t)
	for name, test := range examples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, bins[name])
		})
	}
}

func testQuickstart(t *testing.T, bin string) {
	res := run(t, bin, nil, time.Minute)
	res.wantExit(t, 0)
	res.wantOutput(t, "Cache closed. Every step behaved as described.")
}

func testMultinode(t *testing.T, bin string) {
	// Its defaults: what `go run ./examples/multinode` does.
	res := run(t, bin, nil, time.Minute)
	res.wantExit(t, 0)
	res.wantOutput(t, "Every step behaved as described.")
	if strings.Contains(res.stdout, "skipped:") {
		t.Errorf("a step was skipped on the defaults:\n%s", res.stdout)
	}
}

func testCoherence(t *testing.T, bin string) {
	addr := redistest.Addr(t)
	res := run(t, bin, []string{"-redis", addr, "-duration", "6s", "-nodes", "3",
		"-fault-every", "3s", "-fault-length", "1s", "-faults", "partition"}, time.Minute)
	res.wantExit(t, 0)
	res.wantOutput(t, "violations 0, late reads 0, caller-visible errors 0, panics 0")
	res.wantMatch(t, `partition +1s: converged`)
}

func testBench(t *testing.T, bin string) {
	env := []string{"STRATA_REDIS_ADDR=" + redistest.Addr(t), "STRATA_NATS_URL=" + natstest.URL(t), "STRATA_AMQP_URL=" + rabbittest.URL(t)}
	dir := t.TempDir()
	doc := filepath.Join(dir, "benchmarks.md")
	orig, err := os.ReadFile(filepath.Join("..", "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	res := runEnv(t, bin, env, []string{"-quick", "-count", "1", "-benchtime", "5ms", "-requests", "5000", "-trips", "20",
		"-doc", doc, "-img", img}, 2*time.Minute)
	res.wantExit(t, 0)
	res.wantOutput(t, "wrote the bench-report section of "+doc)
	for _, tr := range []string{"redis", "nats ", "amqp "} {
		res.wantOutput(t, "latency "+tr+" strata p50")
	}
	for _, png := range []string{"bench-l1-hit.png", "bench-hitratio-1000.png", "bench-hitratio-10000.png", "bench-latency-cdf.png"} {
		b, err := os.ReadFile(filepath.Join(img, png))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s: not a PNG (%v)", png, err)
		}
	}
	got, _ := os.ReadFile(doc)
	if bytes.Equal(got, orig) {
		t.Errorf("-doc %s was not rewritten", doc)
	}
}

// testJaeger runs the tracing example without a collector: traces off, it
// exits 0; traces sent to a port nothing listens on, it must say so and
// exit 1. Exporting to a real Jaeger is `make test-e2e`.
func testJaeger(t *testing.T, bin string) {
	mem := "mem://examples-test-jaeger"
	t.Run("no export", func(t *testing.T) {
		res := run(t, bin, []string{"-l2", mem, "-backplane", mem, "-otlp", "", "-metrics-addr", "127.0.0.1:0"}, time.Minute)
		res.wantExit(t, 0)
		res.wantMatch(t, `(?m)^fail-safe +A +GET /users/42 +trace [0-9a-f]{32}$`)
		if strings.Contains(res.stdout, "Traces exported") {
			t.Errorf("claims an export with -otlp \"\":\n%s", res.stdout)
		}
	})
	t.Run("no collector", func(t *testing.T) {
		closed := natstest.ClosedAddr(t)
		res := run(t, bin, []string{"-l2", mem, "-backplane", mem, "-otlp", closed, "-metrics-addr", ""}, time.Minute)
		res.wantExit(t, 1)
		res.wantStderr(t, "jaeger: traces not exported to "+closed)
		if strings.Contains(res.stdout, "Traces exported") {
			t.Errorf("claims an export that failed:\n%s", res.stdout)
		}
	})
}

// testProfileAPI starts the service on its in-process adapters and a table
// of its own in the shared PostgreSQL (pgtest.SharedURL, dropped at the
// end), reads profile 42 twice (database, then l1), updates it, and stops
// it with SIGTERM: it must exit 0. Without a database URL (and built
// without -tags sqlite, as here) it must exit 1 naming both ways out.
func testProfileAPI(t *testing.T, bin string) {
	t.Run("no database", func(t *testing.T) {
		res := runEnv(t, bin, []string{"ADDR=" + freeAddr(t), "DATABASE_URL="}, nil, time.Minute)
		res.wantExit(t, 1)
		res.wantStderr(t, "-database-url postgres://")
		res.wantStderr(t, "-tags sqlite")
	})
	dbURL := pgtest.SharedURL(t)
	table := pgtest.Table(t, dbURL, "profileapi_example")
	addr := freeAddr(t)
	env := []string{"ADDR=" + addr, "DATABASE_URL=" + dbURL, "PROFILES_TABLE=" + table, "INSTANCE=examples-test"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := command(ctx, bin, env, nil)
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("profileapi output:\n%s", out.String())
		}
	}()

	base := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("profileapi exited before answering: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("profileapi did not answer /healthz within a minute")
		}
	}
	type reply struct {
		Profile struct {
			Version         int  `json:"version"`
			CanDeleteOrders bool `json:"can_delete_orders"`
		} `json:"profile"`
		Instance string `json:"instance"`
		Source   string `json:"source"`
	}
	call := func(method, body string) reply {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/profile/42", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s /profile/42: %v", method, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r reply
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
			t.Fatalf("%s /profile/42: %s %s", method, resp.Status, b)
		}
		return r
	}
	if r := call("GET", ""); r.Source != "database" || r.Profile.Version != 1 || r.Instance != "examples-test" {
		t.Errorf("first GET: %+v, want version 1 from the database", r)
	}
	if r := call("GET", ""); r.Source != "l1" {
		t.Errorf("second GET: source %q, want l1", r.Source)
	}
	if r := call("POST", `{"can_delete_orders": false}`); r.Source != "write" || r.Profile.Version != 2 || r.Profile.CanDeleteOrders {
		t.Errorf("POST: %+v, want version 2 without can_delete_orders", r)
	}
	if r := call("GET", ""); r.Source != "l1" || r.Profile.Version != 2 {
		t.Errorf("GET after the update: %+v, want version 2 from l1", r)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("profileapi after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("profileapi still running 30s after SIGTERM")
	}
	if !strings.Contains(out.String(), "shutting down") {
		t.Errorf("no graceful shutdown logged")
	}
}

// exampleDirs lists the directories under examples/ that hold a main
// package.
func exampleDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(e.Name(), "main.go")); err == nil {
				dirs = append(dirs, e.Name())
			}
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no example found under examples/")
	}
	return dirs
}

// build builds every example into a temporary directory, in one go build,
// with -race when the test binary has it (so that the packages the tests
// compiled are reused), and returns each binary's path by name.
func build(t *testing.T) map[string]string {
	t.Helper()
	dirs := exampleDirs(t)
	out := t.TempDir()
	args := []string{"build", "-o", out + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	for _, d := range dirs {
		args = append(args, "./"+d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	bins := map[string]string{}
	for _, d := range dirs {
		bins[d] = filepath.Join(out, d)
	}
	return bins
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// result is what one run of a program did.
type result struct {
	cmd            string
	exit           int
	stdout, stderr string
	elapsed        time.Duration
}

func run(t *testing.T, bin string, args []string, limit time.Duration) result {
	return runEnv(t, bin, nil, args, limit)
}

// runEnv runs bin with args and env added to the environment, killing it
// after limit.
func runEnv(t *testing.T, bin string, env, args []string, limit time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := command(ctx, bin, env, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{cmd: filepath.Base(bin) + " " + strings.Join(args, " "), stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: still running after %v, killed\nstdout:\n%s\nstderr:\n%s", res.cmd, limit, res.stdout, res.stderr)
	case errors.As(err, &exit):
		res.exit = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", res.cmd, err)
	}
	t.Logf("%s: exit status %d after %v", res.cmd, res.exit, res.elapsed.Round(time.Millisecond))
	return res
}

func command(ctx context.Context, bin string, env, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (r result) wantExit(t *testing.T, code int) {
	t.Helper()
	if r.exit != code {
		t.Fatalf("%s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.cmd, r.exit, code, r.stdout, r.stderr)
	}
}

func (r result) wantOutput(t *testing.T, s string) {
	t.Helper()
	if !strings.Contains(r.stdout, s) && !strings.Contains(r.stderr, s) {
		t.Errorf("%s: output lacks %q\nstdout:\n%s\nstderr:\n%s", r.cmd, s, r.stdout, r.stderr)
	}
}

func (r result) wantStderr(t *testing.T, s string) {
	t.Helper()
	if !strings.Contains(r.stderr, s) {
		t.Errorf("%s: stderr lacks %q\nstderr:\n%s", r.cmd, s, r.stderr)
	}
}

func (r result) wantMatch(t *testing.T, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(r.stdout) {
		t.Errorf("%s: stdout does not match %s\nstdout:\n%s", r.cmd, re, r.stdout)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
