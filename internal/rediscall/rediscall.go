// Package rediscall runs go-redis commands for strata's Redis adapters,
// bounded by the caller's context even when the client does not apply
// contexts to network I/O.
package rediscall

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Runner runs the commands of one client.
type Runner struct {
	// deadlines: the client applies a context's deadline to its network
	// reads and writes (go-redis's Options.ContextTimeoutEnabled).
	deadlines bool
}

// For returns the Runner of client.
func For(client redis.UniversalClient) Runner {
	switch c := client.(type) {
	case *redis.Client:
		return Runner{deadlines: c.Options().ContextTimeoutEnabled}
	case *redis.ClusterClient:
		return Runner{deadlines: c.Options().ContextTimeoutEnabled}
	}
	return Runner{}
}

// Do runs f, bounded by ctx. go-redis applies a context's deadline to
// network reads and writes only when the client has ContextTimeoutEnabled,
// and never its cancellation. So f runs on the caller's goroutine when ctx
// can never be done (context.Background), or when it has a deadline the
// client applies itself; a cancellation before that deadline is then seen
// when the command ends. Otherwise f runs on a goroutine of its own and Do
// returns as soon as ctx is done, with ctx.Err(); f then finishes in the
// background, bounded by the client's timeouts.
//
// f must not use memory the caller may change after Do returns (it need not
// care when Inline reports true).
func Do[T any](r Runner, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	if r.Inline(ctx) {
		return f(ctx)
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1) // f never blocks on an abandoned call
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Inline reports whether Do runs f on the caller's goroutine for ctx, so
// that f cannot outlive the call.
func (r Runner) Inline(ctx context.Context) bool {
	if ctx.Done() == nil {
		return true
	}
	_, ok := ctx.Deadline()
	return ok && r.deadlines
}
