package core

import "context"

// Typed is a Cache seen through one value type: the same calls as GetOrSet,
// Get, Set, GetOrSetMany and SetMany with T fixed once, so that a factory,
// a value or a result of another type is a compile error instead of a
// *TypeError at run time. Make one with For.
//
// A Typed is a small value (one pointer): copy it, keep it in a struct
// field, make as many as you like over one Cache. Its methods do what the
// calls they forward to do, same options, same errors; an L1 hit through it
// allocates nothing, as with GetOrSet. They are safe for concurrent use, as
// the Cache's are.
//
// It does not namespace keys: a key is the same entry through every Typed
// of the cache and through the generic functions. Give each type its own
// keys ("user:42", "order:42"). A key read with another type than the one
// it holds is a *TypeError on a node that holds it in L1; a node reading it
// from L2 decodes the stored bytes into the type asked for, which, with
// the JSON serializer, succeeds silently when the shapes are compatible and
// is otherwise a miss (counted in Stats.L2Corrupt) whose factory result
// replaces the entry on every node.
//
// The zero Typed has no cache: its methods return an *OptionError naming
// the field "cache".
type Typed[T any] struct {
	c *Cache
}

// For returns c seen through the value type T:
//
//	users := core.For[User](c)
//	u, err := users.GetOrSet(ctx, "user:42", loadUser)
//
// For does not allocate and c may be shared by any number of handles.
func For[T any](c *Cache) Typed[T] { return Typed[T]{c: c} }

// errTypedNoCache is returned by the methods of a Typed without a cache.
var errTypedNoCache = &OptionError{Field: "cache", Value: nil, Why: "must not be nil (make the Typed with For and a cache from New)"}

// Cache returns the cache the handle reads and writes.
func (t Typed[T]) Cache() *Cache { return t.c }

// GetOrSet is GetOrSet on the handle's cache: the value of key, calling
// factory on a miss. A plain func(ctx context.Context) (T, error) becomes a
// factory with Loader:
//
//	u, err := users.GetOrSet(ctx, "user:42", core.Loader(loadUser42))
func (t Typed[T]) GetOrSet(ctx context.Context, key string, factory Factory[T], opts ...EntryOption) (v T, err error) {
	if t.c == nil {
		return v, errTypedNoCache
	}
	return GetOrSet(ctx, t.c, key, factory, opts...)
}

// Get is Get on the handle's cache: the value of key if the cache holds a
// fresh one, without calling a factory; a miss is (zero, false, nil).
func (t Typed[T]) Get(ctx context.Context, key string, opts ...EntryOption) (T, bool, error) {
	if t.c == nil {
		var zero T
		return zero, false, errTypedNoCache
	}
	return Get[T](ctx, t.c, key, opts...)
}

// Set is Set on the handle's cache: it stores value under key, replacing
// what the cache holds.
func (t Typed[T]) Set(ctx context.Context, key string, value T, opts ...EntryOption) error {
	if t.c == nil {
		return errTypedNoCache
	}
	return Set(ctx, t.c, key, value, opts...)
}

// Remove is Cache.Remove: it deletes key, whatever type it holds.
func (t Typed[T]) Remove(ctx context.Context, key string, opts ...EntryOption) error {
	if t.c == nil {
		return errTypedNoCache
	}
	return t.c.Remove(ctx, key, opts...)
}

// Expire is Cache.Expire: it marks key stale, whatever type it holds.
func (t Typed[T]) Expire(ctx context.Context, key string, opts ...EntryOption) error {
	if t.c == nil {
		return errTypedNoCache
	}
	return t.c.Expire(ctx, key, opts...)
}

// GetOrSetMany is GetOrSetMany on the handle's cache: the values of keys,
// calling factory once for all the keys the cache does not hold.
func (t Typed[T]) GetOrSetMany(ctx context.Context, keys []string, factory ManyFactory[T], opts ...EntryOption) (map[string]T, error) {
	if t.c == nil {
		return nil, errTypedNoCache
	}
	return GetOrSetMany(ctx, t.c, keys, factory, opts...)
}

// SetMany is SetMany on the handle's cache: it stores every value of
// values under its key, each key as its own change.
func (t Typed[T]) SetMany(ctx context.Context, values map[string]T, opts ...EntryOption) error {
	if t.c == nil {
		return errTypedNoCache
	}
	return SetMany(ctx, t.c, values, opts...)
}

// RemoveMany is Cache.RemoveMany: it deletes every key of keys, whatever
// type each holds.
func (t Typed[T]) RemoveMany(ctx context.Context, keys []string, opts ...EntryOption) error {
	if t.c == nil {
		return errTypedNoCache
	}
	return t.c.RemoveMany(ctx, keys, opts...)
}

// ExpireMany is Cache.ExpireMany: it marks every key of keys stale,
// whatever type each holds.
func (t Typed[T]) ExpireMany(ctx context.Context, keys []string, opts ...EntryOption) error {
	if t.c == nil {
		return errTypedNoCache
	}
	return t.c.ExpireMany(ctx, keys, opts...)
}
