//go:build e2e

package main

import (
	"bytes"
	"context"
	"fmt"
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
)

const jaegerAPI = "http://127.0.0.1:16686"

// The tests in this file need a Jaeger (built and started here): they are
// behind the e2e build tag, run by `make test-e2e`, and not by `make test`.

// TestJaegerEndToEnd exports the scenario's traces to a real Jaeger v2 and
// reads them back from its query API: for the update step, the publish span
// on node A (a producer child of A's set span) and the receive span on node
// B linked to A's write.
//
// It runs scripts/jaeger.sh: the Jaeger binary is built once (about 8
// minutes; cached in ${STRATA_CACHE_DIR:-$HOME/.cache/strata}) and started
// if nothing answers on 127.0.0.1:16686; a Jaeger it started is stopped
// at the end (set STRATA_JAEGER_KEEP=1 to keep it for browsing). With the
// binary cached the test takes a few seconds. Under CI=true it never skips;
// elsewhere it skips, saying why, with -short or when Jaeger cannot be built.
func TestJaegerEndToEnd(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	skip := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if testing.Short() && !ci {
		t.Skip("-short: skipping the Jaeger end-to-end test")
	}
	startJaeger(t, skip)

	service := fmt.Sprintf("strata-e2e-%d", time.Now().UnixNano()%1_000_000_000)
	l2URL, bpURL := "redis://127.0.0.1:6379", "redis://127.0.0.1:6379"
	if !listening("127.0.0.1:6379") {
		t.Log("Redis is not listening on 127.0.0.1:6379: using the in-process mem:// adapters")
		l2URL, bpURL = "mem://jaeger-e2e", "mem://jaeger-e2e"
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, config{L2URL: l2URL, BackplaneURL: bpURL, OTLP: "127.0.0.1:4317", Service: service, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	if strings.Contains(out.String(), "could not export") {
		t.Fatal("spans were not exported to Jaeger")
	}

	cn, err := newJaegerClient(jaegerAPI).findCrossNode(ctx, res, "update")
	if err != nil {
		t.Fatalf("Jaeger: %v", err)
	}
	if k := cn.publish.tag("span.kind"); k != "producer" {
		t.Errorf("publish span.kind %q, want producer", k)
	}
	if k := cn.receive.tag("span.kind"); k != "consumer" {
		t.Errorf("receive span.kind %q, want consumer", k)
	}
	if a := cn.receive.tag("strata.backplane.action"); a != "set" {
		t.Errorf("receive strata.backplane.action %q, want set", a)
	}
	if svc := cn.write.service(cn.publish); svc != res.Services[0] {
		t.Errorf("publish on service %q, want %q", svc, res.Services[0])
	}
	if _, _, err := renderWaterfall(cn, "e2e"); err != nil {
		t.Errorf("waterfall: %v", err)
	}
	t.Logf("update trace %s: %s -> %s on %s; %s on %s, trace %s, links to %s/%s",
		cn.write.TraceID, cn.set.OperationName, cn.publish.OperationName, res.Services[0],
		cn.receive.OperationName, res.Services[1], cn.receive.TraceID, cn.write.TraceID, cn.set.SpanID)
}

// TestJaegerExampleExportsAndExitsZero runs the example program itself
// against the real Jaeger: it exits 0 and says how many spans it exported.
// (Without a collector it exits 1: examples/examples_test.go, in make test.)
func TestJaegerExampleExportsAndExitsZero(t *testing.T) {
	startJaeger(t, t.Fatalf)
	bin := filepath.Join(t.TempDir(), "jaeger-example")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-l2", "mem://jaeger-e2e-exit", "-backplane", "mem://jaeger-e2e-exit", "-metrics-addr", "")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/jaeger: %v, want exit status 0\n%s", err, out)
	}
	if !regexp.MustCompile(`Traces exported to 127\.0\.0\.1:4317 \([1-9][0-9]* spans\)`).Match(out) {
		t.Errorf("examples/jaeger does not report its export:\n%s", out)
	}
}

// startJaeger makes sure Jaeger answers, building and starting it with
// scripts/jaeger.sh if needed. The build runs detached, so that a build cut
// short by the test's deadline still completes for the next run.
func startJaeger(t *testing.T, skip func(string, ...any)) {
	t.Helper()
	if jaegerAnswers() {
		return
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "jaeger.sh"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script, "path").Output()
	if err != nil {
		t.Fatalf("%s path: %v", script, err)
	}
	bin := strings.TrimSpace(string(out))
	if _, err := os.Stat(bin); err != nil {
		deadline := time.Now().Add(20 * time.Minute)
		if d, ok := t.Deadline(); ok {
			deadline = d.Add(-45 * time.Second)
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			skip("cannot make the Jaeger cache directory: %v", err)
		}
		log := bin + ".build.log"
		t.Logf("building Jaeger into %s (about 8 minutes, once; log %s)", bin, log)
		f, err := os.Create(log)
		if err != nil {
			t.Fatal(err)
		}
		build := exec.Command("bash", script, "build")
		build.Stdout, build.Stderr = f, f
		build.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives this test
		if err := build.Start(); err != nil {
			f.Close()
			skip("cannot run %s: %v", script, err)
		}
		done := make(chan error, 1)
		go func() { done <- build.Wait(); f.Close() }()
		select {
		case err := <-done:
			if err != nil {
				b, _ := os.ReadFile(log)
				skip("Jaeger could not be built (%v); last output:\n%s", err, tail(string(b), 2000))
			}
		case <-time.After(time.Until(deadline)):
			skip("the Jaeger build is still running (it goes on in the background; log %s): run the test again when it is done, or give go test a longer -timeout", log)
		}
	}
	start := exec.Command("bash", script, "start")
	var buf bytes.Buffer
	start.Stdout, start.Stderr = &buf, &buf
	if err := start.Run(); err != nil {
		skip("%s start: %v\n%s", script, err, buf.String())
	}
	if os.Getenv("STRATA_JAEGER_KEEP") == "" {
		t.Cleanup(func() { exec.Command("bash", script, "stop").Run() })
	}
}

func jaegerAnswers() bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(jaegerAPI + "/api/services")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
