package strataotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"

	"github.com/stratacache/strata/core"
)

// Attribute keys of spans and metrics.
const (
	// AttrCacheName is the cache's name (core.Options.Name).
	AttrCacheName = attribute.Key("strata.cache.name")
	// AttrKey is the key, or the tag of a tag operation (spans only, and not
	// with WithoutKeys).
	AttrKey = attribute.Key("strata.key")
	// AttrHit says whether the value was found without calling a factory
	// (get_or_set, get), or whether L2 held the key (l2.get).
	AttrHit = attribute.Key("strata.hit")
	// AttrStale says whether the value returned was stale (served by
	// fail-safe, or by Get with AllowStaleOnRead).
	AttrStale = attribute.Key("strata.stale")
	// AttrSource says where the value came from: l1, l2 or factory.
	AttrSource = attribute.Key("strata.source")
	// AttrFailSafe says whether fail-safe served a stale value instead of a
	// failed or slow factory's result.
	AttrFailSafe = attribute.Key("strata.failsafe")
	// AttrEagerRefresh is true when the hit started an eager refresh.
	AttrEagerRefresh = attribute.Key("strata.eager_refresh")
	// AttrBackplaneAction is the backplane action of a publish or receive:
	// set, remove, expire, remove_tag, expire_tag, clear_remove,
	// clear_expire.
	AttrBackplaneAction = attribute.Key("strata.backplane.action")
	// AttrBackground is true on a factory span no caller waits for (an
	// eager refresh).
	AttrBackground = attribute.Key("strata.background")
	// AttrOperation is the operation of a metric point: get_or_set, get,
	// set, ..., l2.get, l2.set, l2.delete.
	AttrOperation = attribute.Key("strata.operation")
	// AttrResult is the outcome of a metric point: hit, stale_hit, miss, ok
	// or error.
	AttrResult = attribute.Key("strata.result")
	// AttrTimeout is the kind of a factory timeout: soft or hard.
	AttrTimeout = attribute.Key("strata.timeout")
	// AttrComponent is the component of a circuit breaker: l2 or backplane.
	AttrComponent = attribute.Key("strata.component")
	// AttrState is a circuit breaker's state: open or closed.
	AttrState = attribute.Key("strata.state")
	// AttrReason is why a node expired its L1 after a possible loss of
	// backplane messages: gap, late, reconnected or lost.
	AttrReason = attribute.Key("strata.reason")
	// AttrErrorType is the OpenTelemetry error.type attribute: a short class
	// (timeout, canceled, panic, closed) or the Go type of the error.
	AttrErrorType = attribute.Key("error.type")
)

// ErrorType returns the error.type strataotel reports for err: "timeout"
// for a hard factory timeout or a deadline, "canceled", "panic" for a
// factory panic, "closed" after Close, else the Go type of the error, seen
// through core.FactoryError to the factory's own error (such as
// "*net.OpError"). It returns "" for nil.
func ErrorType(err error) string {
	var pe *core.PanicError
	var fe *core.FactoryError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, core.ErrFactoryTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, core.ErrClosed):
		return "closed"
	case errors.As(err, &pe):
		return "panic"
	case errors.As(err, &fe) && fe.Err != nil:
		return fmt.Sprintf("%T", fe.Err)
	}
	return fmt.Sprintf("%T", err)
}
