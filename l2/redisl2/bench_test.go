package redisl2_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2/redisl2"
)

// BenchmarkGet compares a raw go-redis GET with Store.Get of the same
// value on the same server, with a context that can never be done (the call
// runs on the caller's goroutine) and with a deadline (the call is raced
// against it on a goroutine of its own). Run with:
//
//	go test -run '^$' -bench . -benchtime 2s ./l2/redisl2/
func BenchmarkGet(b *testing.B) {
	c := redistest.NewClient(b, nil)
	prefix := redistest.Prefix()
	s, err := redisl2.New(c, &redisl2.Options{KeyPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := bytes.Repeat([]byte("v"), 256)
	if err := s.Set(context.Background(), "k", value, time.Minute); err != nil {
		b.Fatal(err)
	}
	if err := c.Set(context.Background(), prefix+"raw", value, time.Minute).Err(); err != nil {
		b.Fatal(err)
	}
	withDeadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 5*time.Second)
	}
	b.Run("go-redis", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := c.Get(ctx, prefix+"raw").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-redis/deadline", func(b *testing.B) {
		ctx, cancel := withDeadline()
		defer cancel()
		for b.Loop() {
			if _, err := c.Get(ctx, prefix+"raw").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redisl2", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, _, err := s.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redisl2/deadline", func(b *testing.B) {
		ctx, cancel := withDeadline()
		defer cancel()
		for b.Loop() {
			if _, _, err := s.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redisl2/SetIfNewer", func(b *testing.B) {
		ctx, cancel := withDeadline()
		defer cancel()
		v := time.Now().UnixNano()
		for b.Loop() {
			v++
			if _, err := s.SetIfNewer(ctx, "cond", value, time.Minute, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-redis/SET", func(b *testing.B) {
		ctx, cancel := withDeadline()
		defer cancel()
		for b.Loop() {
			if err := c.Set(ctx, prefix+"rawset", value, time.Minute).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = "k"
	}
	b.Run("redisl2/GetMany20", func(b *testing.B) {
		ctx, cancel := withDeadline()
		defer cancel()
		for b.Loop() {
			if _, err := s.GetMany(ctx, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}
