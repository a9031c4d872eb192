// Package backplane defines how strata nodes tell each other that an entry
// changed: a Backplane publishes and delivers small binary messages on a
// channel and reports the state of its connection, the Message those payloads
// carry, and a registry of URL schemes so a service picks its transport per
// environment with Open.
//
// Adapters (membackplane, redisbackplane, natsbackplane, rabbitbackplane) only
// move bytes and report connection state; core owns loss detection, circuit
// breaking and recovery. Every adapter must pass the conformance suite in
// backplanetest.
package backplane

import (
	"context"
	"errors"
)

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("backplane: closed")

// State is the state of a subscription's connection, as reported to its
// StateFunc.
type State int

const (
	// Connected: the subscription is live for the first time.
	Connected State = iota + 1
	// Disconnected: the connection is lost; messages may be missed until
	// Reconnected.
	Disconnected
	// Reconnected: the subscription is live again after Disconnected. Messages
	// published in between may have been lost.
	Reconnected
	// Lost: the connection stayed up but the transport dropped messages (a
	// slow consumer, an overflowing buffer).
	Lost
)

func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Reconnected:
		return "reconnected"
	case Lost:
		return "lost"
	}
	return "unknown"
}

// MessageFunc receives one payload. It must not retain payload after it
// returns. Calls for one subscription are never concurrent.
type MessageFunc func(payload []byte)

// StateFunc receives a connection state change, with the error that caused it
// when there is one. Calls for one subscription are never concurrent with each
// other or with its MessageFunc.
type StateFunc func(state State, err error)

// Backplane publishes payloads on named channels and delivers them to every
// subscriber of the channel, the publisher's own subscriptions included, each
// subscriber getting them in the order the transport took them: a payload
// whose Publish returned before another's began comes first. core reads its
// own payloads back to time its subscription (its delivery watermark, see
// docs/consistency.md); a transport that does not deliver them keeps the
// node "behind" (safe, but L1 entries older than the staleness bound are
// re-read). Methods are safe for concurrent use and honour ctx.
type Backplane interface {
	// Publish sends payload to the subscribers of channel. It returns an
	// error quickly, and does not block for long, while the transport is
	// disconnected. It must not retain payload after it returns.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe starts delivering the payloads published on channel to
	// onMessage and reports connection changes to onState (Connected once
	// the subscription is live, then Disconnected/Reconnected/Lost). It
	// returns once the subscription is live, or with an error if it cannot
	// be made live before ctx is done.
	Subscribe(ctx context.Context, channel string, onMessage MessageFunc, onState StateFunc) (Subscription, error)
	// Close stops every subscription and releases what the backplane opened
	// itself (not a client the user passed in). It is idempotent.
	Close() error
}

// Subscription is one live Subscribe. Close stops delivery: once Close
// returns, its MessageFunc and StateFunc are not called again. Close is
// idempotent.
type Subscription interface {
	Close() error
}
