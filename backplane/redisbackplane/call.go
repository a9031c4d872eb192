package redisbackplane

import "context"

// do runs f, bounded by ctx. go-redis applies a context's deadline to
// network reads and writes only when the client has ContextTimeoutEnabled,
// and never its cancellation, so when ctx can be done f runs on a goroutine
// of its own and do returns as soon as ctx is done, with ctx.Err(); f then
// finishes in the background, bounded by the client's timeouts. With a
// context that can never be done (context.Background), f runs on the
// caller's goroutine.
//
// f must not use memory the caller may change after do returns.
func do[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	if ctx.Done() == nil {
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
