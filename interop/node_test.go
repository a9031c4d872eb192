package interop

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
	_ "github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	_ "github.com/stratacache/strata/l2/redisl2"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// need returns the path of a program the test needs; without it the test
// is skipped, or failed when $CI is "true".
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not in $PATH, and CI=true forbids skipping: %v", name, err)
		}
		t.Skipf("skipping: %s is not in $PATH: %v", name, err)
	}
	return p
}

// nodeProgram returns the directory of publish.js with its dependencies
// installed: npm ci runs once, when node_modules does not hold the redis
// client yet.
func nodeProgram(t *testing.T) string {
	t.Helper()
	need(t, "node")
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "redis", "package.json")); err == nil {
		return dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, need(t, "npm"), "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir
}

// publish runs publish.js with args and the signing keys, and returns its
// output; it fails t unless the program exits 0.
func publish(t *testing.T, dir, keys string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"publish.js"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "STRATA_SIGNING_KEYS="+keys)
	out, err := cmd.CombinedOutput()
	t.Logf("node publish.js %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("node publish.js: %v", err)
	}
	return string(out)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodePublisher: a live node with signing keys applies the Remove that
// publish.js signs with its key (L1 dropped, L2 tombstone read as a miss),
// and rejects, counting them, one signed with another key and one not
// signed, whose key it keeps serving.
func TestNodePublisher(t *testing.T) {
	dir := nodeProgram(t)
	url := "redis://" + redistest.Addr(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	wrong := []byte("not the key of this cache, 32 b.")
	// A name that channel escaping changes ('.', '_'): publish.js must
	// find the channel the node listens on.
	name, prefix := "interop.node_é "+redistest.Unique(), redistest.Prefix()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := l2.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bp, err := backplane.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close()
	c, err := core.New(core.Options{
		Name: name, KeyPrefix: prefix, L2: store, Backplane: bp,
		BackplaneSigningKeys: [][]byte{key}, WaitForInitialSubscribe: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() {
		rc := redistest.NewClient(t, nil)
		if keys, err := rc.Keys(context.Background(), prefix+"*").Result(); err == nil && len(keys) > 0 {
			rc.Del(context.Background(), keys...)
		}
	}()
	inL1 := func(k string) bool {
		_, found, err := core.Get[string](ctx, c, k, core.WithSkipL2Read())
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	served := func(k string) bool {
		_, found, err := core.Get[string](ctx, c, k)
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	for _, k := range []string{"user:42", "user:43", "user:44"} {
		if err := core.Set(ctx, c, k, "profile of "+k); err != nil {
			t.Fatal(err)
		}
	}

	out := publish(t, dir, hex.EncodeToString(key), "--backplane", url, "--l2", url, "--cache", name, "--key-prefix", prefix, "--key", "user:42")
	if !strings.Contains(out, "published remove \"user:42\" on "+backplane.ChannelName(name)) {
		t.Errorf("publish.js output %q does not name the channel %s", out, backplane.ChannelName(name))
	}
	eventually(t, "the node to apply the Node.js Remove", func() bool { return !inL1("user:42") })
	if served("user:42") {
		t.Error("the node still serves user:42 from L2: no tombstone")
	}
	// The tombstone is byte for byte the one core writes.
	raw, found, err := store.Get(ctx, prefix+"user:42")
	if err != nil || !found {
		t.Fatalf("no L2 entry under user:42: %v", err)
	}
	env, err := l2.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := (&l2.Envelope{Flags: l2.FlagTombstone, Created: env.Created, Expires: env.Created}).AppendBinary(nil)
	if !bytes.Equal(raw, want) || time.Since(time.Unix(0, env.Created)).Abs() > time.Minute {
		t.Errorf("L2 holds % x, want the tombstone % x at about now", raw, want)
	}
	if s := c.Stats(); s.BackplaneReceived != 1 || s.BackplaneRejected != 0 {
		t.Errorf("after the valid message: received %d, rejected %d; want 1 and 0", s.BackplaneReceived, s.BackplaneRejected)
	}

	// Badly signed, then unsigned: messages only (L2 has no signatures).
	publish(t, dir, "base64:"+b64(wrong), "--backplane", url, "--cache", name, "--key", "user:43")
	eventually(t, "the node to reject the badly signed message", func() bool { return c.Stats().BackplaneRejected == 1 })
	publish(t, dir, "", "--backplane", url, "--cache", name, "--key", "user:44")
	eventually(t, "the node to reject the unsigned message", func() bool { return c.Stats().BackplaneRejected == 2 })
	for _, k := range []string{"user:43", "user:44"} {
		if !inL1(k) {
			t.Errorf("the node dropped %s on a message it rejected", k)
		}
	}
	if s := c.Stats(); s.BackplaneReceived != 1 {
		t.Errorf("received %d messages, want 1 (the rejected ones are not applied)", s.BackplaneReceived)
	}
}

// TestNodeScriptIsRedisL2s: publish.js carries a copy of redisl2's
// conditional write; it must stay the same script.
func TestNodeScriptIsRedisL2s(t *testing.T) {
	goSrc, err := os.ReadFile(filepath.Join("..", "l2", "redisl2", "conditional.go"))
	if err != nil {
		t.Fatal(err)
	}
	jsSrc, err := os.ReadFile(filepath.Join("node", "publish.js"))
	if err != nil {
		t.Fatal(err)
	}
	between := func(src, start string) string {
		_, rest, ok := strings.Cut(string(src), start)
		body, _, ok2 := strings.Cut(rest, "`")
		if !ok || !ok2 {
			t.Fatalf("no %q...` in the source", start)
		}
		return body
	}
	// setIfNewer is redisl2's olderOrForeign (the version check it shares
	// with its write-and-publish script) followed by the write.
	g := between(string(goSrc), "const olderOrForeign = `") + between(string(goSrc), "redis.NewScript(olderOrForeign + `")
	if j := between(string(jsSrc), "const SET_IF_NEWER = `"); g != j {
		t.Errorf("publish.js's SET_IF_NEWER differs from redisl2's setIfNewer:\n--- Go\n%s\n--- JS\n%s", g, j)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
