package l2

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrClosed is returned by every Store method called after Close.
var ErrClosed = errors.New("l2: store closed")

// ErrCorrupt is wrapped by every error DecodeEnvelope returns: the bytes are
// not a version 1 envelope (garbage, truncated, trailing bytes, another
// version, unknown flags), such as a value a foreign writer put under a
// cache key. Classify sorts it as ClassCorrupt: core treats the entry as a
// miss, counted in its L2Corrupt statistic, and not as a store failure.
// Stores do not return it: they return the bytes they find (see Store), and
// core judges them.
var ErrCorrupt = errors.New("l2: corrupt envelope")

// ErrPermanent is wrapped by the error a Store returns when the call failed
// for a reason that the same call on the same key meets every time: the key
// holds a value of another type (Redis WRONGTYPE), the server refuses the
// TTL or the value for good (ErrValueTooLarge), a ttl that is not positive.
// Classify sorts it as ClassPermanent: core does not retry such a call and
// does not count it against the store's health (the circuit breaker).
var ErrPermanent = errors.New("l2: permanent error")

// ErrValueTooLarge is wrapped by the error Set or SetIfNewer returns when the
// store refuses a value for its size (the server's limit, or the adapter's),
// with the size and the limit in the message where the adapter knows them.
// It wraps ErrPermanent: the same value fails the same way every time. A
// store without a value limit never returns it.
var ErrValueTooLarge = fmt.Errorf("%w: value too large for the store", ErrPermanent)

// ErrorClass is what an error returned by a Store means for its caller; see
// Classify.
type ErrorClass uint8

const (
	// ClassNone: no error.
	ClassNone ErrorClass = iota
	// ClassCanceled: the caller's context was done. The store is not
	// failing; the call may or may not have taken effect.
	ClassCanceled
	// ClassCorrupt: the bytes read are not a strata entry (ErrCorrupt). A
	// miss, not a store failure.
	ClassCorrupt
	// ClassPermanent: the call fails for good for this key (ErrPermanent).
	// Retrying it is useless; the store is not failing.
	ClassPermanent
	// ClassTransient: the store failed (unreachable, timed out, refused for
	// a reason that may pass). Worth retrying, and evidence against the
	// store's health.
	ClassTransient
)

// String returns the class's name in lower case ("transient"), or
// "ErrorClass(N)" for a value that is not one of the constants.
func (c ErrorClass) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassCanceled:
		return "canceled"
	case ClassCorrupt:
		return "corrupt"
	case ClassPermanent:
		return "permanent"
	case ClassTransient:
		return "transient"
	}
	return "ErrorClass(" + strconv.Itoa(int(c)) + ")"
}

// Classify says what err, returned by a Store method called with ctx (the
// caller's context, not one the caller derived from it to bound the call),
// means:
//
//   - nil: ClassNone.
//   - ctx is done, whatever err is, or err wraps context.Canceled:
//     ClassCanceled. A context.DeadlineExceeded while ctx is not done comes
//     from a bound the caller put on the call (core's L2 timeout) or from the
//     store itself: the store was too slow, ClassTransient.
//   - err wraps ErrCorrupt: ClassCorrupt.
//   - err wraps ErrPermanent (ErrValueTooLarge does): ClassPermanent.
//   - anything else: ClassTransient.
//
// It also sorts the errors of DecodeEnvelope (ClassCorrupt). ctx must not be
// nil.
func Classify(ctx context.Context, err error) ErrorClass {
	switch {
	case err == nil:
		return ClassNone
	case ctx.Err() != nil, errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, ErrCorrupt):
		return ClassCorrupt
	case errors.Is(err, ErrPermanent):
		return ClassPermanent
	}
	return ClassTransient
}
