package l2_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stratacache/strata/l2"
	_ "github.com/stratacache/strata/l2/meml2" // registers mem://
)

func ExampleOpen() {
	ctx := context.Background()
	// In a service: l2.Open(ctx, os.Getenv("CACHE_L2_URL")).
	store, err := l2.Open(ctx, "mem://example-open")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	_ = store.Set(ctx, "greeting", []byte("hello"), time.Minute)
	v, found, err := store.Get(ctx, "greeting")
	fmt.Println(string(v), found, err)

	_, err = l2.Open(ctx, "memcached://localhost:11211")
	fmt.Println(err != nil)
	// Output:
	// hello true <nil>
	// true
}

func ExampleSchemes() {
	fmt.Println(slices.Contains(l2.Schemes(), "mem"))
	// Output: true
}

func ExampleEnvelope_AppendBinary() {
	created := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	e := l2.Envelope{
		Flags:   l2.FlagFailSafe,
		Created: created.UnixNano(),
		Expires: created.Add(time.Minute).UnixNano(),
		Tags:    []string{"tenant:7"},
		Value:   []byte(`{"id":42}`),
	}
	b, err := e.AppendBinary(nil)
	fmt.Println(len(b), err)
	fmt.Printf("version %d, flags %#02x\n", b[0], b[1])
	// Output:
	// 61 <nil>
	// version 1, flags 0x01
}

func ExampleDecodeEnvelope() {
	e := l2.Envelope{Created: 1, Expires: 2, ETag: `"v1"`, Value: []byte("v")}
	b, _ := e.AppendBinary(nil)

	got, err := l2.DecodeEnvelope(b)
	fmt.Println(got.ETag, string(got.Value), err)

	_, err = l2.DecodeEnvelope(b[:len(b)-1])
	fmt.Println(errors.Is(err, l2.ErrCorrupt))
	fmt.Println(err)
	// Output:
	// "v1" v <nil>
	// true
	// l2: corrupt envelope: truncated value at offset 46 (need 1 bytes, have 0)
}

func ExampleEnvelope_MarshalBinary() {
	e := l2.Envelope{Flags: 0x80} // a reserved flag
	_, err := e.MarshalBinary()
	fmt.Println(errors.Is(err, l2.ErrInvalidEnvelope))
	fmt.Println(err)
	// Output:
	// true
	// l2: invalid envelope: unknown flags 0x80 (known: 0x03)
}

func ExampleClassify() {
	ctx := context.Background()
	store, _ := l2.Open(ctx, "mem://example-classify")
	defer store.Close()

	// What a caller of a Store does with each class of error.
	read := func(ctx context.Context, key string) string {
		b, found, err := store.Get(ctx, key)
		switch l2.Classify(ctx, err) {
		case l2.ClassCanceled:
			return "the caller gave up: not a store failure"
		case l2.ClassPermanent:
			return "fails for good for this key: a miss, not retried"
		case l2.ClassTransient:
			return "the store failed: " + err.Error()
		}
		if !found {
			return "miss"
		}
		if _, err := l2.DecodeEnvelope(b); l2.Classify(ctx, err) == l2.ClassCorrupt {
			return "not a strata entry: a miss, counted as corrupt"
		}
		return "hit"
	}

	fmt.Println(read(ctx, "nothing"))
	_ = store.Set(ctx, "foreign", []byte("hello"), time.Minute) // not an envelope
	fmt.Println(read(ctx, "foreign"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	fmt.Println(read(cancelled, "foreign"))

	// A deadline the caller did not set (a timeout put on the call) is a
	// store failure; the same error past the caller's own deadline is not.
	err := fmt.Errorf("myl2: get: %w", context.DeadlineExceeded)
	fmt.Println(l2.Classify(ctx, err))
	fmt.Println(l2.Classify(cancelled, err))
	fmt.Println(l2.Classify(ctx, fmt.Errorf("myl2: set: %w", l2.ErrValueTooLarge)))
	// Output:
	// miss
	// not a strata entry: a miss, counted as corrupt
	// the caller gave up: not a store failure
	// transient
	// canceled
	// permanent
}
