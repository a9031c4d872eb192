package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Changes of many keys or tags in one call: SetMany, RemoveMany,
// ExpireMany, RemoveByTags, ExpireByTags. Each runs the one-key (one-tag)
// operation once per key, so each key is its own change, with its own
// version, L2 write and backplane message, exactly as if the caller had
// looped: other nodes may see some of the changes before others, and the
// call is not atomic. What they add to the loop: the keys are checked for
// emptiness before anything changes, each key is changed once however often
// it is listed, in sorted order, and the errors of the keys that failed are
// joined, each naming its key, while the other keys are still changed.

// SetMany stores every value of values under its key, as Set does, with the
// same options for every key. Each key is its own change: the call is not
// atomic, and other nodes may see some of the new values before others.
//
// An empty key fails the call before anything is written. The keys are then
// written in sorted order. A key the cache refuses (longer than
// Options.MaxKeyLength, or starting with the reserved prefix) or whose value
// cannot be serialized for L2 is not written, the others are, and the error
// is errors.Join of one error per such key, each naming it. An error that
// would refuse every key ends the call at the key where it happens:
// invalid options (at the first key, before anything is written),
// ErrClosed, or ctx's error (ctx is checked before each key, so an ended
// context stops the writes; the keys before it stay written). The error
// then names how many keys were not written and the first of them. With no
// values SetMany does nothing.
//
// Observers see one set operation per key.
func SetMany[T any](ctx context.Context, c *Cache, values map[string]T, opts ...EntryOption) error {
	if c == nil {
		return errManyNoCache
	}
	return eachOf(ctx, "SetMany", "key", "written", slices.Sorted(maps.Keys(values)), func(key string) error {
		return Set(ctx, c, key, values[key], opts...)
	})
}

// RemoveMany removes every key of keys, as Remove does. Each key is its own
// change, not atomic with the others; a key listed twice is removed once.
// An empty key fails the call before anything is removed; a key the cache
// refuses, ErrClosed and ctx's error are handled as by SetMany.
func (c *Cache) RemoveMany(ctx context.Context, keys []string, opts ...EntryOption) error {
	if c == nil {
		return errManyNoCache
	}
	return eachOf(ctx, "RemoveMany", "key", "removed", sortedSet(keys), func(key string) error {
		return c.Remove(ctx, key, opts...)
	})
}

// ExpireMany expires every key of keys, as Expire does: fail-safe may still
// serve them. Errors and atomicity are as for RemoveMany.
func (c *Cache) ExpireMany(ctx context.Context, keys []string, opts ...EntryOption) error {
	if c == nil {
		return errManyNoCache
	}
	return eachOf(ctx, "ExpireMany", "key", "expired", sortedSet(keys), func(key string) error {
		return c.Expire(ctx, key, opts...)
	})
}

// RemoveByTags removes every entry tagged with any of tags, as RemoveByTag
// does for each tag (an entry with two of the tags is removed once and for
// all). Each tag is its own change, not atomic with the others: another
// node may see the invalidation of one tag before the other. An empty tag
// fails the call before anything is removed; a tag the cache refuses
// (longer than Options.MaxKeyLength), ErrClosed and ctx's error are handled
// as keys are by SetMany.
func (c *Cache) RemoveByTags(ctx context.Context, tags []string, opts ...EntryOption) error {
	if c == nil {
		return errManyNoCache
	}
	return eachOf(ctx, "RemoveByTags", "tag", "removed", sortedSet(tags), func(tag string) error {
		return c.RemoveByTag(ctx, tag, opts...)
	})
}

// ExpireByTags expires every entry tagged with any of tags, as ExpireByTag
// does for each tag: fail-safe may still serve them. Errors and atomicity
// are as for RemoveByTags.
func (c *Cache) ExpireByTags(ctx context.Context, tags []string, opts ...EntryOption) error {
	if c == nil {
		return errManyNoCache
	}
	return eachOf(ctx, "ExpireByTags", "tag", "expired", sortedSet(tags), func(tag string) error {
		return c.ExpireByTag(ctx, tag, opts...)
	})
}

// errManyNoCache is returned by the calls above given no cache.
var errManyNoCache = &OptionError{Field: "cache", Value: nil, Why: "must not be nil"}

// sortedSet returns the distinct strings of s, sorted, in a new slice.
func sortedSet(s []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

// eachOf runs op on every item (a key or a tag, as field says), in order,
// for the call named name; done says what op does ("written"). See SetMany
// for what it returns.
func eachOf(ctx context.Context, name, field, done string, items []string, op func(string) error) error {
	if ctx == nil {
		return errNilContext
	}
	for _, it := range items {
		if it == "" {
			if field == "tag" {
				return errEmptyTag
			}
			return errEmptyKey
		}
	}
	var errs []error
	for i, it := range items {
		err := ctx.Err()
		if err == nil {
			if err = op(it); err == nil {
				continue
			}
			if !refusesAll(err, field) {
				errs = append(errs, fmt.Errorf("core: %s: %s %q: %w", name, field, it, err))
				continue
			}
			if i == 0 {
				return err // nothing changed: the error of the one-key call
			}
		}
		errs = append(errs, fmt.Errorf("core: %s: %d of %d %ss not %s, from %q on: %w", name, len(items)-i, len(items), field, done, it, err))
		break
	}
	return errors.Join(errs...)
}

// refusesAll reports whether err, returned by a one-key call, would be
// returned for every other key (field names the key or tag): the cache is
// closed, the context or the options are invalid.
func refusesAll(err error, field string) bool {
	if errors.Is(err, ErrClosed) {
		return true
	}
	var oe *OptionError
	return errors.As(err, &oe) && oe.Field != field
}
