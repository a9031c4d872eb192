package core

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/stratacache/strata/serializer"
)

// encoded is a value that arrived on the backplane (values on the
// backplane), still serialized: the type it decodes to is known only to
// the reader, so the first read decodes it, with the type that read asks
// for, and keeps the result for the reads after it.
type encoded struct {
	b   []byte
	ser serializer.Serializer
	// last is the last decoded value, with its type.
	last atomic.Pointer[decodedValue]
}

type decodedValue struct{ v any }

// as converts a cached value to T, or reports a *TypeError. A value
// received serialized is decoded as T (a value that does not decode as T is
// a *TypeError too).
func as[T any](key string, v any) (T, error) {
	if enc, ok := v.(*encoded); ok {
		return decodeAs[T](key, enc)
	}
	t, ok := v.(T)
	if !ok && v != nil {
		return t, typeError[T](key, v)
	}
	return t, nil
}

// decodeAs returns enc's value as T, decoding it unless the last read did
// so with the same type.
func decodeAs[T any](key string, enc *encoded) (T, error) {
	if d := enc.last.Load(); d != nil {
		if t, ok := d.v.(T); ok {
			return t, nil
		}
	}
	var t T
	if err := enc.ser.Unmarshal(enc.b, &t); err != nil {
		return t, &TypeError{Key: key, Want: fmt.Sprintf("%T", t), Got: fmt.Sprintf("a value received on the backplane that does not decode as %T: %v", t, err)}
	}
	enc.last.Store(&decodedValue{v: t})
	return t, nil
}

// errUndecodable: an L1 value received on the backplane does not decode as
// the type asked for; it was dropped from L1, and the read is a miss (as
// for an L2 entry that does not decode).
var errUndecodable = errors.New("core: value received on the backplane does not decode")

// l1Value returns the value of e, key's L1 entry, as T. An entry received
// serialized is decoded and, when L1 still holds it, replaced by its
// decoded copy, so that later hits take the inline path; one that does not
// decode as T is dropped from L1 (counted as corrupt, errUndecodable).
func l1Value[T any](c *Cache, key string, e *entry) (T, error) {
	v, err := as[T](key, e.value)
	if !e.wire {
		return v, err
	}
	if err != nil {
		c.stats.bpCorrupt.Add(1)
		c.logger.Warn("strata: a value received on the backplane does not decode; dropped from L1", "key", key, "err", err)
		c.l1.compute(key, func(old *entry) (*entry, bool) { return nil, old != e })
		return v, errUndecodable
	}
	c.l1.compute(key, func(old *entry) (*entry, bool) {
		if old != e {
			return nil, true
		}
		return e.decodedCopy(v), false
	})
	return v, nil
}
