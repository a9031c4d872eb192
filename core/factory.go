package core

import (
	"context"
	"time"
)

// Factory produces the value of a key on a miss. Its context is not the
// caller's: it is not cancelled when a caller gives up, so the result can
// still be cached (background completion); it is cancelled when the cache
// closes, at the caller's timeout when BackgroundFactoryCompletion is off, and
// once the factory has returned (as an http.Request's context is once its
// handler has): work the factory leaves running must not depend on it. It
// carries the values of the context of the call that started it.
type Factory[T any] func(ctx context.Context, fc *FactoryContext[T]) (T, error)

// FactoryContext is what a factory knows of the entry it produces and may
// change about how its result is cached. It belongs to one factory run and
// must not be used after the factory returns.
type FactoryContext[T any] struct {
	// Key is the key being produced.
	Key string
	// Options are the entry options the result will be cached with. The
	// factory may change them (adaptive caching): a duration from the data,
	// other tags, SkipL1Write to not cache this result.
	Options *EntryOptions
	// ETag and LastModified are those of the stale entry, if any, for a
	// conditional request to the source.
	ETag         string
	LastModified time.Time

	stale   T
	newETag string
	// newLastModified is Modified's lastModified in Unix nanoseconds (0:
	// none), as entries keep it.
	newLastModified int64
	hasStale        bool
	notModified     bool
}

// Stale returns the stale value of the key, if there is one: an expired
// entry kept by fail-safe, or the current entry during an eager refresh.
func (fc *FactoryContext[T]) Stale() (T, bool) { return fc.stale, fc.hasStale }

// NotModified tells the cache that the stale value is still current (the
// source answered "not modified"): it is cached again as fresh, keeping its
// ETag and LastModified. Return its results from the factory. Without a stale
// value it returns ErrNoStaleValue.
func (fc *FactoryContext[T]) NotModified() (T, error) {
	if !fc.hasStale {
		var zero T
		return zero, ErrNoStaleValue
	}
	fc.notModified = true
	return fc.stale, nil
}

// Modified returns v to be cached with the given ETag and LastModified, for
// the next conditional refresh. Return its results from the factory.
func (fc *FactoryContext[T]) Modified(v T, etag string, lastModified time.Time) (T, error) {
	fc.notModified = false
	fc.newETag, fc.newLastModified = etag, 0
	if !lastModified.IsZero() {
		fc.newLastModified = lastModified.UnixNano()
	}
	return v, nil
}
