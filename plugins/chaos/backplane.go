package chaos

import (
	"context"

	"github.com/stratacache/strata/backplane"
)

// Backplane is a backplane.Backplane with faults injected by its Injector
// (whose methods are the Backplane's).
type Backplane struct {
	*Injector
	inner backplane.Backplane
}

var _ backplane.Backplane = (*Backplane)(nil)

// NewBackplane wraps inner. Publish and Subscribe are delayed and failed as
// the Injector decides (a failed Publish sends nothing); each payload
// delivered to a subscription is dropped with the drop rate, silently: the
// subscription's StateFunc is not told. Connection states pass through
// untouched, as does Close. Invalid options are an error naming the field.
func NewBackplane(inner backplane.Backplane, opts *Options) (*Backplane, error) {
	inj, err := newInjector("NewBackplane", opts)
	if err != nil {
		return nil, err
	}
	return &Backplane{Injector: inj, inner: inner}, nil
}

// Publish publishes payload on the wrapped backplane unless a fault says
// otherwise.
func (b *Backplane) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := b.before(ctx, "backplane Publish"); err != nil {
		return err
	}
	return b.inner.Publish(ctx, channel, payload)
}

// Subscribe subscribes on the wrapped backplane unless a fault says
// otherwise; the subscription's payloads go through the drop rate.
func (b *Backplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	if err := b.before(ctx, "backplane Subscribe"); err != nil {
		return nil, err
	}
	wrapped := onMessage
	if onMessage != nil {
		wrapped = func(payload []byte) {
			if !b.drop() {
				onMessage(payload)
			}
		}
	}
	return b.inner.Subscribe(ctx, channel, wrapped, onState)
}

// Close closes the wrapped backplane.
func (b *Backplane) Close() error { return b.inner.Close() }

// Unwrap returns the wrapped backplane.
func (b *Backplane) Unwrap() backplane.Backplane { return b.inner }
