package natskvl2_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/natskvl2"
)

// TestValueOverTheBucketLimitIsValueTooLarge: a bucket made with a max value
// size refuses longer messages; the store reports that as
// l2.ErrValueTooLarge (permanent: core does not retry it), for a value in
// one message and for a value split into chunks.
func TestValueOverTheBucketLimitIsValueTooLarge(t *testing.T) {
	_, js := connect(t, natstest.URL(t))
	bucket := testBucket(t, js)
	if _, err := js.CreateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: bucket, TTL: time.Hour, MaxValueSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	s, err := natskvl2.New(ctx(t), js, &natskvl2.Options{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, size := range []int{128 << 10, 3 << 20} { // one message; chunks
		big := bytes.Repeat([]byte("x"), size)
		if err := s.Set(ctx(t), "big", big, time.Minute); !errors.Is(err, l2.ErrValueTooLarge) {
			t.Errorf("Set of %d bytes into a bucket of max value size 64 KiB: err = %v, want one wrapping l2.ErrValueTooLarge", size, err)
		}
		if _, err := s.SetIfNewer(ctx(t), "big", big, time.Minute, 1); !errors.Is(err, l2.ErrValueTooLarge) {
			t.Errorf("SetIfNewer of %d bytes into a bucket of max value size 64 KiB: err = %v, want one wrapping l2.ErrValueTooLarge", size, err)
		}
	}
	if err := s.Set(ctx(t), "small", []byte("v"), time.Minute); err != nil {
		t.Errorf("Set of a small value: %v", err)
	}
}
