package natskvl2_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/natskvl2"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// newStore returns a store on a fresh bucket, the bucket's raw KV handle,
// and its JetStream.
func newStore(t *testing.T, opts *natskvl2.Options) (*natskvl2.Store, jetstream.KeyValue) {
	t.Helper()
	_, js := connect(t, natstest.URL(t))
	var o natskvl2.Options
	if opts != nil {
		o = *opts
	}
	o.Bucket = testBucket(t, js)
	s, err := natskvl2.New(ctx(t), js, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	kv, err := js.KeyValue(ctx(t), o.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s, kv
}

// keys lists the raw KV keys of a bucket.
func keys(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	ks, err := kv.Keys(ctx(t))
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func mustGet(t *testing.T, s l2.Store, key string) ([]byte, bool) {
	t.Helper()
	v, found, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, found
}

// TestLargeValueChunks: a value larger than one message is split into
// chunks, read back whole, and its chunks are removed when it is replaced
// (by Set or SetIfNewer) or deleted, and by a refused SetIfNewer.
func TestLargeValueChunks(t *testing.T) {
	s, kv := newStore(t, nil)
	big := func(b byte) []byte { return bytes.Repeat([]byte{b}, 2<<20+123) } // 3 chunks
	if err := s.Set(ctx(t), "k", big(1), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := len(keys(t, kv)); n != 4 {
		t.Errorf("%d KV keys after Set of a 2 MiB value, want 4 (record and 3 chunks): %q", n, keys(t, kv))
	}
	if v, found := mustGet(t, s, "k"); !found || !bytes.Equal(v, big(1)) {
		t.Fatalf("Get of a chunked value: found=%v, %d bytes", found, len(v))
	}
	if err := s.Set(ctx(t), "k", big(2), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := len(keys(t, kv)); n != 4 {
		t.Errorf("%d KV keys after replacing a chunked value, want 4: %q", n, keys(t, kv))
	}
	stored, err := s.SetIfNewer(ctx(t), "k", big(3), time.Minute, 10)
	if err != nil || !stored {
		t.Fatalf("SetIfNewer = %v, %v", stored, err)
	}
	if stored, err := s.SetIfNewer(ctx(t), "k", big(4), time.Minute, 5); err != nil || stored {
		t.Fatalf("SetIfNewer of an older version = %v, %v", stored, err)
	}
	if n := len(keys(t, kv)); n != 4 {
		t.Errorf("%d KV keys after SetIfNewer, want 4: %q", n, keys(t, kv))
	}
	if v, _ := mustGet(t, s, "k"); !bytes.Equal(v, big(3)) {
		t.Errorf("Get after a refused SetIfNewer: %d bytes starting %x, want the version 10 value", len(v), v[:1])
	}
	if err := s.Set(ctx(t), "k", []byte("small"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := len(keys(t, kv)); n != 1 {
		t.Errorf("%d KV keys after replacing a chunked value with a small one, want 1: %q", n, keys(t, kv))
	}
	if err := s.Set(ctx(t), "k", big(5), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx(t), "k"); err != nil {
		t.Fatal(err)
	}
	if ks := keys(t, kv); len(ks) != 0 {
		t.Errorf("KV keys left after Delete: %q", ks)
	}
	if _, found := mustGet(t, s, "k"); found {
		t.Error("found after Delete")
	}
}

// TestLongKeys: keys too long for a KV key are stored under a hash, apart,
// and round trip.
func TestLongKeys(t *testing.T) {
	s, kv := newStore(t, nil)
	a, b := strings.Repeat("a", 5000), strings.Repeat("a", 4999)+"b"
	for _, k := range []string{a, b} {
		if err := s.Set(ctx(t), k, []byte(k[len(k)-1:]), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := mustGet(t, s, a); string(v) != "a" {
		t.Errorf("Get(a...) = %q", v)
	}
	if v, _ := mustGet(t, s, b); string(v) != "b" {
		t.Errorf("Get(a...b) = %q", v)
	}
	for _, k := range keys(t, kv) {
		if len(k) > 100 {
			t.Errorf("KV key of %d bytes: long keys should be hashed", len(k))
		}
	}
}

// TestTTLCutToMaxTTL: a TTL above Options.MaxTTL is cut to it; the bucket
// New creates has MaxTTL as its TTL.
func TestTTLCutToMaxTTL(t *testing.T) {
	s, kv := newStore(t, &natskvl2.Options{MaxTTL: time.Second, Storage: jetstream.MemoryStorage})
	st, err := kv.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != time.Second {
		t.Errorf("bucket TTL = %v, want 1s", st.TTL())
	}
	if err := s.Set(ctx(t), "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, found := mustGet(t, s, "k"); !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry with ttl 1h in a bucket with MaxTTL 1s did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCloseLeavesUserConnection: Close of a Store made by New leaves the
// caller's connection open.
func TestCloseLeavesUserConnection(t *testing.T) {
	nc, js := connect(t, natstest.URL(t))
	s, err := natskvl2.New(ctx(t), js, &natskvl2.Options{Bucket: testBucket(t, js)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !nc.IsConnected() {
		t.Errorf("connection status after Close = %v", nc.Status())
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := natskvl2.New(ctx(t), nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	_, js := connect(t, natstest.URL(t))
	for _, o := range []natskvl2.Options{
		{Bucket: "bad.name"}, {Bucket: "a b"}, {MaxTTL: -1}, {Replicas: -1}, {Timeout: -1}, {Storage: 7},
	} {
		if _, err := natskvl2.New(ctx(t), js, &o); err == nil || !strings.Contains(err.Error(), "Options.") {
			t.Errorf("New(%+v) = %v, want an error naming the field", o, err)
		}
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := natskvl2.New(c, js, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("New with a cancelled context = %v", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"nats://h:4222?queue_size=1", `unknown parameter "queue_size"`},
		{"nats://h:4222/path", "want nats://"},
		{"nats://h:4222?max_ttl=forever", "max_ttl"},
		{"nats://h:4222?storage=disk", "storage"},
		{"nats://h:4222?replicas=0", "replicas"},
		{"nats://h:4222?timeout=0s", "timeout"},
		{"nats://h:4222?connect_timeout=x", "connect_timeout"},
		{"nats://h:4222?tls_key=k", "tls_cert and tls_key"},
		{"nats://u:s3cret@h:4222?nope=1", `unknown parameter "nope"`},
	} {
		_, err := l2.Open(context.Background(), tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error reveals the password: %v", tc.url, err)
		}
	}
}

// TestOpenUnreachable: Open of a server that is not there fails, even with
// a context without deadline.
func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	_, err := l2.Open(context.Background(), "nats://u:s3cret@"+natstest.ClosedAddr(t)+"?bucket=b")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error reveals the password: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v", d)
	}
}
