package backplanetest

import (
	"context"
	"testing"

	"github.com/stratacache/strata/backplane"
)

// Harness makes the nodes the suite tests. Each call of MakeBackplane returns
// a new node (its own connection) to the same transport, so that what one
// node publishes reaches the others. Run closes every Backplane it makes.
// MakeBackplane may call t.Skip when the transport is not available.
type Harness interface {
	MakeBackplane(ctx context.Context, t *testing.T) (backplane.Backplane, error)
}

// Disconnector is an optional interface of a Harness that can cut a node off
// its transport and let it back, as a network failure or a server restart
// would. With it, Run checks that the node's subscriptions report
// backplane.Disconnected then backplane.Reconnected, that Publish fails
// within a few seconds while it is cut off, and that delivery resumes after.
type Disconnector interface {
	// Disconnect cuts b off until Reconnect; b was made by MakeBackplane.
	Disconnect(ctx context.Context, t *testing.T, b backplane.Backplane) error
	// Reconnect lets b reach its transport again.
	Reconnect(ctx context.Context, t *testing.T, b backplane.Backplane) error
}

// UnreachableMaker is an optional interface of a Harness that can make a
// node pointed at a server that is not there (a closed port, say). With it,
// Run checks that the node fails instead of hanging: either
// MakeUnreachableBackplane returns an error, or Subscribe and Publish do,
// within a few seconds of their context's deadline.
type UnreachableMaker interface {
	MakeUnreachableBackplane(ctx context.Context, t *testing.T) (backplane.Backplane, error)
}

// LooseOrder is an optional interface of a Harness whose Publish may return
// before the transport has taken the payload (RabbitMQ without publisher
// confirms: the payload may still be in the socket). When
// LooseCrossPublisherOrder reports true, Run checks that a node receives
// its own payloads once each, but not that they come after what another
// node published just before.
type LooseOrder interface {
	LooseCrossPublisherOrder() bool
}

// Inspector is an optional interface of a Harness that can count what the
// transport holds for one node, and for one channel, besides goroutines:
// the server's connections from the node and their subscriptions, the
// channel's subscribers on the server, a connection's AMQP channels and
// queues. With it, Run checks that Subscribe calls cancelled midway and
// closed subscriptions leave none of it behind.
type Inspector interface {
	// Holdings returns the counts for node b and channel, each under a
	// name that says what it counts (failures show it). Run reads them on
	// a node that has not subscribed yet, and again once its subscriptions
	// are gone: they must come back, and only what subscriptions hold
	// should be counted.
	Holdings(ctx context.Context, t *testing.T, b backplane.Backplane, channel string) (map[string]int, error)
}

// Run runs the conformance suite against the transport of h, as subtests of
// t. It closes every Backplane it makes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	s := suite{h: h}
	t.Run("SubscribeIsLive", s.testSubscribeIsLive)
	t.Run("DeliversToOtherNodes", s.testDeliversToOtherNodes)
	t.Run("OrderPerPublisher", s.testOrderPerPublisher)
	t.Run("OwnPayloadsAfterEarlierOnes", s.testOwnPayloadsAfterEarlierOnes)
	t.Run("Payloads", s.testPayloads)
	t.Run("PayloadReusedByPublisher", s.testPayloadReuse)
	t.Run("ChannelIsolation", s.testChannelIsolation)
	t.Run("TwoSubscriptionsOneChannel", s.testTwoSubscriptionsOneChannel)
	t.Run("SubscriptionClose", s.testSubscriptionClose)
	t.Run("ConcurrentPublishers", s.testConcurrentPublishers)
	t.Run("ContextDone", s.testContextDone)
	t.Run("UseAfterClose", s.testUseAfterClose)
	t.Run("CancelledSubscribeLeavesNothing", s.testCancelledSubscribe)
	t.Run("Reconnect", func(t *testing.T) {
		d, ok := h.(Disconnector)
		if !ok {
			t.Skip("the harness does not implement backplanetest.Disconnector")
		}
		s.testReconnect(t, d)
	})
	t.Run("Unreachable", func(t *testing.T) {
		u, ok := h.(UnreachableMaker)
		if !ok {
			t.Skip("the harness does not implement backplanetest.UnreachableMaker")
		}
		s.testUnreachable(t, u)
	})
}
