package natskvl2_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/natskvl2"
)

// testBucket returns a bucket name no other run uses, and deletes the
// bucket when the test ends.
func testBucket(t testing.TB, js jetstream.JetStream) string {
	name := "strata_test_" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, name); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("delete bucket %s: %v", name, err)
		}
	})
	return name
}

// connect connects to url with quick reconnects and closes the connection
// when the test ends.
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// harness makes stores on one connection and one bucket.
type harness struct {
	server string
	js     jetstream.JetStream
	bucket string
}

func (h *harness) MakeStore(ctx context.Context, t *testing.T) (l2.Store, error) {
	return natskvl2.New(ctx, h.js, &natskvl2.Options{Bucket: h.bucket, MaxTTL: 10 * time.Minute})
}

// MakeUnreachableStore returns a store whose server went away for good:
// opened through a proxy that is then cut and never restored.
func (h *harness) MakeUnreachableStore(ctx context.Context, t *testing.T) (l2.Store, error) {
	p := natstest.NewProxy(t, h.server)
	nc, js := connect(t, p.URL())
	s, err := natskvl2.New(ctx, js, &natskvl2.Options{Bucket: h.bucket})
	if err != nil {
		return nil, err
	}
	p.Cut()
	for nc.Status() == nats.CONNECTED {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, nil
}

// WriteRaw puts raw in the bucket under key's KV key, as a foreign writer
// would (nats kv put): not a record. The bucket's TTL bounds its life.
func (h *harness) WriteRaw(ctx context.Context, _ *testing.T, _ l2.Store, key string, raw []byte, _ time.Duration) error {
	kv, err := h.js.KeyValue(ctx, h.bucket)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, natskvl2.KeyToken(key), raw)
	return err
}

func TestConformance(t *testing.T) {
	url := natstest.URL(t)
	_, js := connect(t, url)
	l2test.Run(t, &harness{server: natstest.HostPort(url, "4222"), js: js, bucket: testBucket(t, js)})
}

// urlHarness makes stores with l2.Open, each with its own connection, on a
// memory bucket.
type urlHarness struct{ url string }

func (h urlHarness) MakeStore(ctx context.Context, _ *testing.T) (l2.Store, error) {
	return l2.Open(ctx, h.url)
}

func TestConformanceOpenedByURL(t *testing.T) {
	url := natstest.URL(t)
	_, js := connect(t, url)
	bucket := testBucket(t, js)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	l2test.Run(t, urlHarness{url + sep + "bucket=" + bucket + "&storage=memory&max_ttl=10m&name=strata-conformance"})
}
