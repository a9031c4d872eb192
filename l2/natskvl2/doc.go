// Package natskvl2 is a strata L2 store on a NATS JetStream key-value
// bucket (github.com/nats-io/nats.go/jetstream). It implements l2.Store,
// l2.ConditionalStore and l2.MultiGetter.
//
// New takes the caller's jetstream.JetStream (and so its *nats.Conn), and
// binds to the bucket Options.Bucket, creating it when it does not exist:
//
//	js, err := jetstream.New(nc)
//	store, err := natskvl2.New(ctx, js, &natskvl2.Options{Bucket: "cache", MaxTTL: 24 * time.Hour})
//	c, err := core.New(core.Options{Name: "users", L2: store})
//
// # What is stored
//
// KV keys allow only [-/_=.a-zA-Z0-9], and strata keys are any bytes, so
// each key is stored under "k" followed by the key in unpadded base64url
// (reversible, collision-free). A key longer than 360 bytes is stored under
// "h" followed by the base64url SHA-256 of the key, and its full key is
// kept in the entry so that Get checks it.
//
// Each value is stored with a small header: a format byte, flags, the
// expiry time and the version (SetIfNewer's, Unix nanoseconds). Per-key
// TTLs need NATS server 2.11 or later (and the client only sets one on
// Create, not on Update), so the expiry is kept in the header instead: an
// entry past it is missing for Get, and the bucket's TTL (its MaxAge,
// Options.MaxTTL for a bucket New creates) removes it physically. An entry
// thus occupies the bucket until it is overwritten, deleted, or the bucket
// TTL passes, whatever its own TTL; a TTL above the bucket's is cut to it.
// Expiry is judged by the reader's clock against the writer's: keep node
// clocks in sync.
//
// A value too large for one message (the server's max_payload, 1 MiB by
// default, less 1 KiB for headers) is split into chunks under keys of its
// own (TOKEN.ID.N), written before the entry that lists them, and removed
// when the entry is replaced or deleted (best effort: a chunk left behind by
// a failed or racing write goes with the bucket TTL). A reader that finds a
// chunk missing (the value was replaced while it read) gets a miss, never a
// mix of two values.
//
// # Conditional writes
//
// SetIfNewer reads the entry and its KV revision, compares versions, and
// writes with the revision it read (KV Update, or Create for a missing key),
// so that a concurrent writer is detected by the server; on a conflict it
// reads again, up to 50 times. A value stored by Set has the lowest version.
// Set and Delete also read first, to clean up the chunks of a large value
// they replace; deleting a missing key writes nothing.
//
// # Failures
//
// Every call fails at once, with an error wrapping ErrNotConnected, while
// the connection is not up, and is bounded by Options.Timeout when its
// context has no deadline. A KV value under a key's KV key that this
// package did not write (not a record: a foreign writer's, or a truncated
// one) is returned as stored, as l2.Store says, for core to reject; a
// write replaces it. Keys are encoded and bounded in length, so the server
// refuses none; a ttl that is not positive, and a value too large, are
// errors wrapping l2.ErrPermanent.
//
// # URL
//
// Importing the package registers the "nats" scheme for l2.Open (the
// backplane registry has its own "nats", for natsbackplane). A store opened
// that way makes its own connection and closes it on Close:
//
//	nats://[user:password@|token@]host[:port][,host[:port]...][?bucket=NAME&param=value...]
//
// Parameters (an unknown one is an error naming it):
//
//	bucket=NAME          Options.Bucket (default "strata")
//	max_ttl=24h          Options.MaxTTL
//	storage=file|memory  Options.Storage of a bucket created by Open (default file)
//	replicas=N           Options.Replicas
//	timeout=5s           Options.Timeout
//	name=NAME            connection name (default "strata natskvl2")
//	connect_timeout=2s   dial and handshake timeout of each attempt
//	reconnect_wait=2s    wait between reconnect attempts
//	max_reconnects=-1    reconnect attempts before giving up; -1 (default): never
//	creds=FILE           NATS credentials file
//	tls=true             require TLS (also implied by the three below)
//	tls_ca=FILE, tls_cert=FILE, tls_key=FILE
//
// A server that is not there is an error from Open within its context (or
// Options.Timeout), not a hang.
package natskvl2
