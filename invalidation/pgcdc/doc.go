// Package pgcdc invalidates a strata cache from PostgreSQL's change log, so
// that a write made straight in the database (an admin's UPDATE, a batch
// job, a service in another language) reaches every node as a change made
// through the cache does.
//
// A Consumer streams committed transactions from a logical replication slot
// (plugin pgoutput, built on github.com/jackc/pglogrepl) and maps each
// changed row, by Rules, to keys and tags: table public.profiles, key
// "profile:{id}", tag "tenant:{tenant_id}". For an UPDATE or a DELETE both
// the old and the new row invalidate, so a row that moved tenant
// invalidates both tenants' tags (the old row's values come from the
// table's REPLICA IDENTITY: FULL, or a key holding every column the rule
// names). It applies them with the cache's own Remove, Expire, RemoveByTag,
// ExpireByTag or Clear, stamped with the commit time (core.WithChangedAt):
// L2 tombstones and markers are written and backplane messages published as
// for any change, and a factory that read the row before the commit cannot
// cache its old value over the invalidation.
//
// Delivery loses nothing: the slot learns that a transaction is done only
// after all its invalidations were written and published, so a consumer
// killed at any point (kill -9 included) leaves the rest to the next one,
// which applies it again (applying twice does no harm). One consumer
// streams from a slot at a time (the slot is the lock); the same code on
// other nodes stands by and takes over, within Options.RetryInterval of the
// server noticing the holder is gone: at once when its process dies (the
// kernel closes its connection), within the server's wal_sender_timeout
// when its machine or network does.
//
// Setup creates the publication and the slot (idempotent) and says what to
// change when wal_level is not logical, the role lacks REPLICATION, or a
// rule does not fit its table. docs/invalidation.md has the set-up on
// managed PostgreSQL, the clock assumption, and when to use this package,
// the strata CLI or the library.
package pgcdc
