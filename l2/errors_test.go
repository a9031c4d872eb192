package l2

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel2()
	transient := errors.New("dial tcp 127.0.0.1:6379: connection refused")
	_, decodeErr := DecodeEnvelope([]byte("hello"))
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want ErrorClass
	}{
		{"nil", live, nil, ClassNone},
		{"nil with a done ctx", cancelled, nil, ClassNone},
		{"store failure", live, transient, ClassTransient},
		{"any error once the caller cancelled", cancelled, transient, ClassCanceled},
		{"any error past the caller's deadline", expired, transient, ClassCanceled},
		{"permanent past the caller's deadline", expired, fmt.Errorf("x: %w", ErrPermanent), ClassCanceled},
		{"canceled, ctx not done", live, fmt.Errorf("redisl2: get: %w", context.Canceled), ClassCanceled},
		{"deadline of a bound the caller put on the call", live, fmt.Errorf("redisl2: get: %w", context.DeadlineExceeded), ClassTransient},
		{"corrupt", live, fmt.Errorf("x: %w", ErrCorrupt), ClassCorrupt},
		{"DecodeEnvelope's error", live, decodeErr, ClassCorrupt},
		{"permanent", live, fmt.Errorf("redisl2: get: %w: WRONGTYPE", ErrPermanent), ClassPermanent},
		{"value too large", live, fmt.Errorf("natskvl2: set: %w: 2 MiB", ErrValueTooLarge), ClassPermanent},
		{"closed", live, fmt.Errorf("meml2: get: %w", ErrClosed), ClassTransient},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.ctx, tt.err); got != tt.want {
				t.Errorf("Classify(ctx, %v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestValueTooLargeIsPermanent: ErrValueTooLarge keeps its own identity and
// is also ErrPermanent.
func TestValueTooLargeIsPermanent(t *testing.T) {
	err := fmt.Errorf("redisl2: set: %w: 600 MiB", ErrValueTooLarge)
	if !errors.Is(err, ErrValueTooLarge) || !errors.Is(err, ErrPermanent) {
		t.Errorf("%v: errors.Is ErrValueTooLarge %v, ErrPermanent %v; want both", err,
			errors.Is(err, ErrValueTooLarge), errors.Is(err, ErrPermanent))
	}
	if errors.Is(fmt.Errorf("x: %w", ErrPermanent), ErrValueTooLarge) {
		t.Error("every permanent error is ErrValueTooLarge")
	}
}

func TestErrorClassString(t *testing.T) {
	for c, want := range map[ErrorClass]string{
		ClassNone: "none", ClassCanceled: "canceled", ClassCorrupt: "corrupt",
		ClassPermanent: "permanent", ClassTransient: "transient", 9: "ErrorClass(9)",
	} {
		if got := c.String(); got != want {
			t.Errorf("ErrorClass(%d).String() = %q, want %q", c, got, want)
		}
	}
}
