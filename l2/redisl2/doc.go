// Package redisl2 is the Redis adapter of strata's distributed cache: an
// l2.Store that also implements l2.ConditionalStore and l2.MultiGetter, on
// a go-redis client the user owns (a single node, a Sentinel-managed
// failover client or a Redis Cluster client).
//
// New takes the client; the store never closes it. Importing the package
// registers the "redis" and "rediss" URL schemes, so that
// l2.Open(ctx, "redis://host:6379/0?key_prefix=app:") gives a store on a
// client of its own (closed by the store's Close).
//
// Each entry is one Redis string under Options.KeyPrefix + key holding a
// 16-byte version header (the SetIfNewer version in fixed-width hex) followed
// by the value, with the entry's TTL in milliseconds. SetIfNewer is one Lua
// script, so the version check and the write are atomic; it compares
// versions as exact 64-bit integers. Every command touches one key, so the
// store works on Redis Cluster; GetMany uses MGET on a single-node or
// failover client and pipelined GETs (one round trip per node) on a cluster
// client. docs/redis.md describes the layout, the URL options and the
// cluster notes.
//
// A Redis string without the version header (written by something else) is
// returned by Get and GetMany as stored, as l2.Store says, and replaced by
// Set and SetIfNewer. A key of another Redis type (a list, a hash) is an
// error wrapping l2.ErrPermanent for Get (WRONGTYPE, the same every time),
// missing for GetMany, and replaced by Set and SetIfNewer.
//
// Every method honours its context, deadline and cancellation alike, even
// when the client does not apply contexts to network I/O (go-redis's
// ContextTimeoutEnabled): a call whose context is done returns at once with
// an error wrapping ctx.Err(), leaving the command to finish, bounded by the
// client's own timeouts. An error therefore does not mean that a write did
// not happen.
package redisl2
