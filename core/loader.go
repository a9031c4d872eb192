package core

import "context"

// Loader turns a plain load function into a Factory, for the factories that
// need nothing of their FactoryContext (no stale value, no per-result
// options, no ETag):
//
//	u, err := core.GetOrSet(ctx, c, "user:42", core.Loader(func(ctx context.Context) (User, error) {
//		return db.User(ctx, 42)
//	}))
//
// The factory calls load with the factory's context (see Factory) and
// returns its results unchanged; an error or a panic is treated as any
// factory's. Loader(nil) is a nil Factory, which GetOrSet rejects with an
// *OptionError.
//
// Loader allocates one small closure each time it is called, also when the
// call it is passed to is an L1 hit. On a hot path, make the factory once
// (a package variable, a struct field) and pass that: then a hit allocates
// nothing.
func Loader[T any](load func(ctx context.Context) (T, error)) Factory[T] {
	if load == nil {
		return nil
	}
	return func(ctx context.Context, _ *FactoryContext[T]) (T, error) { return load(ctx) }
}
