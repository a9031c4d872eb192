package natskvl2

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/l2"
)

// Defaults of Options.
const (
	// DefaultBucket is the bucket name when Options.Bucket is empty.
	DefaultBucket = "strata"
	// DefaultMaxTTL is the bucket's TTL when Options.MaxTTL is zero.
	DefaultMaxTTL = 24 * time.Hour
	// DefaultTimeout bounds each call whose context has no deadline when
	// Options.Timeout is zero.
	DefaultTimeout = 5 * time.Second
)

// maxCASAttempts bounds the revision-conflict retries of SetIfNewer.
const maxCASAttempts = 50

// headroom is what a message keeps free of the server's max payload for
// the headers the client adds (expected last sequence and the like).
const headroom = 1024

// manyWorkers bounds the concurrent reads of one GetMany.
const manyWorkers = 16

// ErrNotConnected is wrapped by the errors of calls made while the NATS
// connection is not up: they fail at once instead of waiting for a
// reconnect.
var ErrNotConnected = errors.New("natskvl2: not connected")

// Options configures a Store. A nil *Options gives the defaults.
type Options struct {
	// Bucket is the key-value bucket (letters, digits, '-' and '_').
	// Empty means DefaultBucket. New creates it when it does not exist.
	Bucket string
	// MaxTTL is the TTL of a bucket New creates (the bucket's MaxAge: no
	// entry outlives it) and the longest TTL an entry gets: a longer ttl
	// is cut to it. Zero means DefaultMaxTTL. A bucket that already exists
	// keeps its own TTL.
	MaxTTL time.Duration
	// Storage is the storage of a bucket New creates: jetstream.FileStorage
	// (the zero value) or jetstream.MemoryStorage.
	Storage jetstream.StorageType
	// Replicas is the number of replicas of a bucket New creates, on a
	// clustered server. Zero means 1.
	Replicas int
	// Timeout bounds each call whose context has no deadline. Zero means
	// DefaultTimeout.
	Timeout time.Duration
}

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Store is an l2.Store, l2.ConditionalStore and l2.MultiGetter on a NATS
// JetStream key-value bucket. Its methods are safe for concurrent use.
type Store struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	kv      jetstream.KeyValue
	stream  jetstream.Stream // the bucket's stream, to purge chunks
	subject string           // "$KV.<bucket>."
	maxTTL  time.Duration
	timeout time.Duration
	maxMsg  int // longest record stored in one message

	owned  bool // made by the URL opener: Close closes the connection
	closed atomic.Bool
}

var (
	_ l2.Store            = (*Store)(nil)
	_ l2.ConditionalStore = (*Store)(nil)
	_ l2.MultiGetter      = (*Store)(nil)
)

// New returns a Store on the bucket Options.Bucket of js, creating the
// bucket (with TTL Options.MaxTTL, history 1) if it does not exist. js
// belongs to the caller: Close leaves its connection open. New fails, within
// ctx (or Options.Timeout when ctx has no deadline), when the server cannot
// be reached or has no JetStream. opts may be nil.
func New(ctx context.Context, js jetstream.JetStream, opts *Options) (*Store, error) {
	if js == nil {
		return nil, errors.New("natskvl2: nil jetstream.JetStream")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	switch {
	case !bucketName.MatchString(o.Bucket):
		return nil, fmt.Errorf("natskvl2: Options.Bucket %q is not a valid bucket name (letters, digits, '-', '_')", o.Bucket)
	case o.MaxTTL < 0:
		return nil, fmt.Errorf("natskvl2: Options.MaxTTL is %v, want 0 (default) or more", o.MaxTTL)
	case o.Replicas < 0:
		return nil, fmt.Errorf("natskvl2: Options.Replicas is %d, want 0 (default) or more", o.Replicas)
	case o.Timeout < 0:
		return nil, fmt.Errorf("natskvl2: Options.Timeout is %v, want 0 (default) or more", o.Timeout)
	case o.Storage != jetstream.FileStorage && o.Storage != jetstream.MemoryStorage:
		return nil, fmt.Errorf("natskvl2: Options.Storage is %v, want jetstream.FileStorage or jetstream.MemoryStorage", o.Storage)
	}
	s := &Store{
		js:      js,
		nc:      js.Conn(),
		subject: "$KV." + o.Bucket + ".",
		maxTTL:  cmpOr(o.MaxTTL, DefaultMaxTTL),
		timeout: cmpOr(o.Timeout, DefaultTimeout),
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natskvl2: open bucket %q: %w", o.Bucket, err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	kv, err := js.KeyValue(ctx, o.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      o.Bucket,
			Description: "strata L2 cache",
			History:     1,
			TTL:         s.maxTTL,
			Storage:     o.Storage,
			Replicas:    max(o.Replicas, 1),
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // made by another node meanwhile
			kv, err = js.KeyValue(ctx, o.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natskvl2: open bucket %q: %w", o.Bucket, withCtx(ctx, err))
	}
	stream, err := js.Stream(ctx, "KV_"+o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("natskvl2: open bucket %q: %w", o.Bucket, withCtx(ctx, err))
	}
	s.kv, s.stream = kv, stream
	s.maxMsg = max(int(s.nc.MaxPayload())-headroom, 4096)
	return s, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Get returns the value stored under key. A missing or expired entry, or a
// large value replaced while it was read, is found == false with a nil
// error. A KV value under the key that this package did not write (it is
// not a record) is returned as stored, as l2.Store says.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel, err := s.begin(ctx, "get")
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	v, found, err := s.get(ctx, key)
	if err != nil {
		return nil, false, fmt.Errorf("natskvl2: get: %w", withCtx(ctx, err))
	}
	return v, found, nil
}

// GetMany returns one value per key, in order, as Get returns it; a missing
// key is nil. It reads the keys concurrently (up to 16 requests in flight),
// which costs about one round trip for a small batch.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	ctx, cancel, err := s.begin(ctx, "get many")
	if err != nil {
		return nil, err
	}
	defer cancel()
	vals := make([][]byte, len(keys))
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(len(keys), manyWorkers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				v, found, err := s.get(ctx, keys[i])
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if found {
					vals[i] = v
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, fmt.Errorf("natskvl2: get many: %w", withCtx(ctx, firstErr))
	}
	return vals, nil
}

// get reads key: its record, then its chunks if it has any.
func (s *Store) get(ctx context.Context, key string) ([]byte, bool, error) {
	token, _ := keyToken(key)
	e, err := s.kv.Get(ctx, token)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r, err := decodeRecord(e.Value())
	if err != nil { // written by something else: returned as stored
		if e.Value() == nil {
			return []byte{}, true, nil // a found value is never nil
		}
		return e.Value(), true, nil
	}
	if !s.live(r, key) {
		return nil, false, nil
	}
	if !r.chunked {
		return r.value, true, nil
	}
	if r.total > l2.MaxValueLen {
		return nil, false, nil
	}
	// The manifest's total is not allocated on its word alone (a corrupt
	// one could announce 4 GiB): the buffer grows as chunks arrive, and
	// the total is checked at the end.
	v := make([]byte, 0, min(r.total, 1<<20))
	for n := range r.count {
		c, err := s.kv.Get(ctx, chunkKey(token, r.id, n))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, false, nil // replaced or deleted while we read
		}
		if err != nil {
			return nil, false, err
		}
		v = append(v, c.Value()...)
	}
	if uint64(len(v)) != r.total {
		return nil, false, nil
	}
	return v, true, nil
}

// live reports whether r, a record stored under key's token, holds a value
// of key: its own (not another key's under the same hash), not expired.
func (s *Store) live(r record, key string) bool {
	return !(r.fullKey && r.key != key) && time.Now().UnixNano() < r.expires
}

// Set stores value under key for ttl (cut to the bucket's MaxTTL),
// replacing any value. A value stored by Set has the lowest version: any
// SetIfNewer replaces it. A ttl that is not positive is an error wrapping
// l2.ErrPermanent.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel, err := s.begin(ctx, "set")
	if err != nil {
		return err
	}
	defer cancel()
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("natskvl2: set: %w", err)
	}
	token, hashed := keyToken(key)
	old, err := s.current(ctx, token, key)
	if err != nil {
		return fmt.Errorf("natskvl2: set: %w", withCtx(ctx, err))
	}
	data, w, err := s.prepare(ctx, token, key, hashed, value, ttl, math.MinInt64)
	if err != nil {
		return fmt.Errorf("natskvl2: set: %w", withCtx(ctx, err))
	}
	if _, err := s.kv.Put(ctx, token, data); err != nil {
		s.dropChunks(ctx, token, w)
		return fmt.Errorf("natskvl2: set: %w", withCtx(ctx, tooLarge(err, len(data))))
	}
	s.dropChunks(ctx, token, old.r)
	return nil
}

// SetIfNewer stores value under key for ttl (cut to the bucket's MaxTTL)
// when key is missing, expired, stored by Set or by something else than
// this package, or stored with a version lower than version, and reports
// whether it stored. A ttl that is not positive is an error wrapping
// l2.ErrPermanent. It reads the entry and
// its revision, compares versions, and writes only if the revision is still
// the one it read (KV update with the expected revision, or create for a
// missing key); on a conflict with another writer it reads again, up to 50
// times.
func (s *Store) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	ctx, cancel, err := s.begin(ctx, "set if newer")
	if err != nil {
		return false, err
	}
	defer cancel()
	if err := checkTTL(ttl); err != nil {
		return false, fmt.Errorf("natskvl2: set if newer: %w", err)
	}
	token, hashed := keyToken(key)
	var data []byte
	var w record // the chunks written for value, if any
	for attempt := 0; ; attempt++ {
		old, err := s.current(ctx, token, key)
		if err != nil {
			s.dropChunks(ctx, token, w)
			return false, fmt.Errorf("natskvl2: set if newer: %w", withCtx(ctx, err))
		}
		if old.live && old.r.version >= version {
			s.dropChunks(ctx, token, w)
			return false, nil
		}
		if data == nil {
			if data, w, err = s.prepare(ctx, token, key, hashed, value, ttl, version); err != nil {
				return false, fmt.Errorf("natskvl2: set if newer: %w", withCtx(ctx, err))
			}
		}
		if old.rev == 0 {
			_, err = s.kv.Create(ctx, token, data)
		} else {
			_, err = s.kv.Update(ctx, token, data, old.rev)
		}
		if err == nil {
			s.dropChunks(ctx, token, old.r)
			return true, nil
		}
		if !isConflict(err) || attempt+1 >= maxCASAttempts {
			s.dropChunks(ctx, token, w)
			if isConflict(err) {
				err = fmt.Errorf("%d revision conflicts with other writers: %w", maxCASAttempts, err)
			}
			err = tooLarge(err, len(data))
			return false, fmt.Errorf("natskvl2: set if newer: %w", withCtx(ctx, err))
		}
		// Another writer got in between: let it finish, then look again.
		select {
		case <-ctx.Done():
			s.dropChunks(context.WithoutCancel(ctx), token, w)
			return false, fmt.Errorf("natskvl2: set if newer: %w", ctx.Err())
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 4)))):
		}
	}
}

// stored is what current found under a token.
type stored struct {
	r    record // decoded record; zero when there is none or it is corrupt
	live bool   // r holds a live value of the key
	rev  uint64 // the KV revision; 0 when the KV key does not exist
}

// current reads the entry under token, for a write that replaces it: its
// record (to compare versions, and to drop its chunks once replaced), and
// its revision (for an update that expects it).
func (s *Store) current(ctx context.Context, token, key string) (stored, error) {
	e, err := s.kv.Get(ctx, token)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return stored{}, nil
	}
	if err != nil {
		return stored{}, err
	}
	var c stored
	c.rev = e.Revision()
	if r, err := decodeRecord(e.Value()); err == nil { // else foreign: replaced
		c.r, c.live = r, s.live(r, key)
	}
	return c, nil
}

// prepare returns the record to store for value and, when the value needs
// more than one message, writes its chunks first and returns their
// manifest in w.
func (s *Store) prepare(ctx context.Context, token, key string, hashed bool, value []byte, ttl time.Duration, version int64) (data []byte, w record, err error) {
	r := record{
		expires: time.Now().Add(min(ttl, s.maxTTL)).UnixNano(),
		version: version,
		fullKey: hashed,
	}
	if hashed {
		r.key = key
	}
	if headerLen+4+len(r.key)+len(value) <= s.maxMsg {
		r.value = value
		return appendRecord(make([]byte, 0, headerLen+4+len(r.key)+len(value)), &r), record{}, nil
	}
	if uint64(len(value)) > l2.MaxValueLen {
		return nil, record{}, fmt.Errorf("%w: %d bytes, limit %d", l2.ErrValueTooLarge, len(value), uint64(l2.MaxValueLen))
	}
	r.chunked, r.id, r.total = true, rand.Uint64(), uint64(len(value))
	for off := 0; off < len(value); off += s.maxMsg {
		chunk := value[off:min(off+s.maxMsg, len(value))]
		if _, err := s.kv.Put(ctx, chunkKey(token, r.id, r.count), chunk); err != nil {
			s.dropChunks(ctx, token, r)
			return nil, record{}, tooLarge(err, len(chunk))
		}
		r.count++
	}
	return appendRecord(nil, &r), r, nil
}

// dropChunks removes the chunks of r, if it has any, from the bucket. It
// is best effort: a chunk left behind goes with the bucket's TTL.
func (s *Store) dropChunks(ctx context.Context, token string, r record) {
	if !r.chunked {
		return
	}
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	for n := range r.count {
		_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.subject+chunkKey(token, r.id, n)))
	}
}

// Delete removes key. Deleting a missing key is not an error (and writes
// nothing).
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel, err := s.begin(ctx, "delete")
	if err != nil {
		return err
	}
	defer cancel()
	token, _ := keyToken(key)
	e, err := s.kv.Get(ctx, token)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natskvl2: delete: %w", withCtx(ctx, err))
	}
	if err := s.kv.Delete(ctx, token); err != nil {
		return fmt.Errorf("natskvl2: delete: %w", withCtx(ctx, err))
	}
	if r, err := decodeRecord(e.Value()); err == nil {
		s.dropChunks(ctx, token, r)
	}
	return nil
}

// Close makes later calls fail with an error wrapping l2.ErrClosed, and
// closes the connection if the Store made it (l2.Open); a JetStream passed
// to New is left alone. It is idempotent and returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.owned {
		s.nc.Close()
	}
	return nil
}

// begin does what every call does first: refuse after Close, with a done
// ctx, and while the connection is down; and bound ctx by Options.Timeout
// when it has no deadline.
func (s *Store) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, fmt.Errorf("natskvl2: %s: %w", op, l2.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("natskvl2: %s: %w", op, err)
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return nil, nil, fmt.Errorf("natskvl2: %s: %w (%v)", op, ErrNotConnected, st)
	}
	ctx, cancel := s.bound(ctx)
	return ctx, cancel, nil
}

func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// withCtx makes err wrap ctx's error when ctx is done, so that errors.Is
// finds context.Canceled or context.DeadlineExceeded whatever the client
// returned.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// checkTTL refuses a ttl that is not positive, for good.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl must be positive, got %v", l2.ErrPermanent, ttl)
	}
	return nil
}

// tooLarge marks err as l2.ErrValueTooLarge when the server refused a
// message of n bytes for its size: over the bucket's max value size
// (MaxValueSize, the stream's max_msg_size), or over the connection's max
// payload.
func tooLarge(err error, n int) error {
	var apiErr *jetstream.APIError
	if errors.Is(err, nats.ErrMaxPayload) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum) {
		return fmt.Errorf("%w: a message of %d bytes: %w", l2.ErrValueTooLarge, n, err)
	}
	return err
}

// isConflict reports whether err is a revision mismatch of a KV create or
// update: another writer changed the key since it was read.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
