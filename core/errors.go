package core

import (
	"errors"
	"fmt"
	"reflect"
	"time"
)

var (
	// ErrClosed is returned by every operation on a Cache after Close.
	ErrClosed = errors.New("core: cache closed")
	// ErrFactoryTimeout is returned when a factory runs past its hard timeout
	// and no stale value can be served instead.
	ErrFactoryTimeout = errors.New("core: factory timed out")
	// ErrNoStaleValue is returned by FactoryContext.NotModified when there is
	// no stale value to keep.
	ErrNoStaleValue = errors.New("core: no stale value")
)

// FactoryError wraps the error a factory returned, naming the key.
// errors.Is and errors.As see through it to the factory's own error.
type FactoryError struct {
	Key string
	Err error
}

func (e *FactoryError) Error() string {
	return fmt.Sprintf("core: factory for key %q: %v", e.Key, e.Err)
}

func (e *FactoryError) Unwrap() error { return e.Err }

// PanicError is the error every waiter receives when a factory panics; the
// process does not crash.
type PanicError struct {
	Key   string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("core: factory for key %q panicked: %v", e.Key, e.Value)
}

// TypeError is returned when a key holds a value of another type than the
// one a call asked for.
type TypeError struct {
	Key  string
	Got  string
	Want string
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("core: key %q holds a %s, not a %s", e.Key, e.Got, e.Want)
}

func typeError[T any](key string, v any) error {
	return &TypeError{Key: key, Got: fmt.Sprintf("%T", v), Want: reflect.TypeFor[T]().String()}
}

// OptionError reports an invalid option, naming the field and the bad value.
type OptionError struct {
	Field string
	Value any
	Why   string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("core: %s %s, got %v", e.Field, e.Why, e.Value)
}

// errNilContext is returned by every call given a nil context.
var errNilContext = &OptionError{Field: "ctx", Value: nil, Why: "must not be nil (use context.Background())"}

// errEmptyKey is returned for an empty key.
var errEmptyKey = &OptionError{Field: "key", Value: `""`, Why: "must not be empty"}

// errEmptyTag is returned for an empty tag to invalidate.
var errEmptyTag = &OptionError{Field: "tag", Value: `""`, Why: "must not be empty"}

// SubscribeError is returned by New when Options.WaitForInitialSubscribe
// passed before the backplane's first subscription was live. Err is the
// last error Subscribe returned, if any.
type SubscribeError struct {
	// Backplane is the backplane's type, Channel the channel subscribed to.
	Backplane, Channel string
	Timeout            time.Duration
	Err                error
}

func (e *SubscribeError) Error() string {
	s := fmt.Sprintf("core: backplane %s: no live subscription to channel %q after Options.WaitForInitialSubscribe (%s)", e.Backplane, e.Channel, e.Timeout)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SubscribeError) Unwrap() error { return e.Err }

// factoryFailure reports whether err is a failure of the factory (an error,
// a panic, a timeout), which fail-safe may answer, not of the call.
func factoryFailure(err error) bool {
	var fe *FactoryError
	var pe *PanicError
	return errors.As(err, &fe) || errors.As(err, &pe) || errors.Is(err, ErrFactoryTimeout)
}
