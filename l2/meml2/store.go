package meml2

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/l2"
)

// Options configures a Store. The zero value (or a nil *Options) gives the
// defaults.
type Options struct {
	// Now returns the current time; entries expire by it. Nil means
	// time.Now. Tests pass a fake clock to expire entries without sleeping.
	// It must be safe for concurrent use.
	Now func() time.Time
}

// Store is an in-process l2.Store, l2.ConditionalStore and l2.MultiGetter.
// All methods are safe for concurrent use. Values are copied on Set and on
// Get, so neither side can change the other's bytes.
//
// A Store is a handle on a table of entries: private to it when made by New,
// shared with the other handles of the same name when made by NewShared or
// l2.Open("mem://NAME"). Each handle has its own Close, faults and stats.
type Store struct {
	tab  *table
	name string // "" for a private table
	now  func() time.Time

	closed atomic.Bool
	fault  atomic.Pointer[Fault]

	gets, hits, sets, deletes atomic.Uint64
}

var (
	_ l2.Store            = (*Store)(nil)
	_ l2.ConditionalStore = (*Store)(nil)
	_ l2.MultiGetter      = (*Store)(nil)
)

// New returns a Store with its own private table. opts may be nil.
func New(opts *Options) *Store {
	return newStore(newTable(), "", opts)
}

// NewShared returns a new handle on the process-wide table called name, the
// same table l2.Open(ctx, "mem://"+name) uses: everything opened with the
// same name sees the same entries. The table lives while at least one handle
// on it is open; when the last one is closed its entries are dropped. opts
// (nil for defaults) applies to this handle only. An empty name is an error.
func NewShared(name string, opts *Options) (*Store, error) {
	if name == "" {
		return nil, errors.New("meml2: empty shared store name")
	}
	return newStore(acquire(name), name, opts), nil
}

func newStore(tab *table, name string, opts *Options) *Store {
	s := &Store{tab: tab, name: name, now: time.Now}
	if opts != nil && opts.Now != nil {
		s.now = opts.Now
	}
	return s
}

// Get returns a copy of the value stored under key. A missing or expired key
// is found == false with a nil error; a key made to hold a value of another
// type (SetWrongType) is an error wrapping l2.ErrPermanent.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.begin(ctx, "get", &s.gets, 1); err != nil {
		return nil, false, err
	}
	v, ok, wrongType := s.tab.get(key, s.now())
	if wrongType {
		return nil, false, fmt.Errorf("meml2: get: %w", errWrongType)
	}
	if ok {
		s.hits.Add(1)
	}
	return v, ok, nil
}

// GetMany returns a copy of the value of each key, in order; a missing or
// expired key, or one holding a value of another type, is nil; an empty
// value is a non-nil empty slice.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.begin(ctx, "get many", &s.gets, uint64(len(keys))); err != nil {
		return nil, err
	}
	vals, hits := s.tab.getMany(keys, s.now())
	s.hits.Add(uint64(hits))
	return vals, nil
}

// Set stores a copy of value under key for ttl, replacing any value. A ttl
// that is not positive is an error wrapping l2.ErrPermanent. A value stored
// by Set has no version: any later SetIfNewer replaces it.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin(ctx, "set", &s.sets, 1); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("meml2: set: %w", err)
	}
	s.tab.set(key, value, ttl, math.MinInt64, false, s.now())
	return nil
}

// SetIfNewer stores a copy of value under key for ttl when key is missing,
// expired, stored by Set or SetWrongType, or stored with a version lower
// than version; it reports whether it stored. A ttl that is not positive is
// an error wrapping l2.ErrPermanent.
func (s *Store) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	if err := s.begin(ctx, "set if newer", &s.sets, 1); err != nil {
		return false, err
	}
	if err := checkTTL(ttl); err != nil {
		return false, fmt.Errorf("meml2: set if newer: %w", err)
	}
	return s.tab.set(key, value, ttl, version, true, s.now()), nil
}

// SetWrongType makes key hold a value of another type than bytes for ttl,
// as a Redis key holding a list does, for tests of code that must cope with
// one (l2test.WrongTypeMaker): Get of key is an error wrapping
// l2.ErrPermanent, GetMany answers it as missing, Set and SetIfNewer replace
// it and Delete removes it. It is not counted in Stats and ignores faults.
// After Close it returns an error wrapping l2.ErrClosed; a ttl that is not
// positive is an error wrapping l2.ErrPermanent. It is safe for concurrent
// use.
func (s *Store) SetWrongType(key string, ttl time.Duration) error {
	if s.closed.Load() {
		return fmt.Errorf("meml2: set wrong type: %w", l2.ErrClosed)
	}
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("meml2: set wrong type: %w", err)
	}
	s.tab.setWrongType(key, ttl, s.now())
	return nil
}

// errWrongType is the error of a Get on a key SetWrongType made.
var errWrongType = fmt.Errorf("%w: the key holds a value of another type", l2.ErrPermanent)

// checkTTL refuses a ttl that is not positive, for good.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl must be positive, got %v", l2.ErrPermanent, ttl)
	}
	return nil
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete", &s.deletes, 1); err != nil {
		return err
	}
	s.tab.delete(key)
	return nil
}

// Close closes this handle; later calls of its Get, GetMany, Set,
// SetIfNewer and Delete return an error wrapping l2.ErrClosed. Other handles
// on a shared table keep working; the table is dropped with its last handle.
// Close is idempotent and always returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.name != "" {
		release(s.name, s.tab)
	}
	return nil
}

// begin does what every data call does first: refuse after Close and with a
// done ctx, count the call, then apply the injected fault.
func (s *Store) begin(ctx context.Context, op string, counter *atomic.Uint64, n uint64) error {
	if s.closed.Load() {
		return fmt.Errorf("meml2: %s: %w", op, l2.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("meml2: %s: %w", op, err)
	}
	counter.Add(n)
	if f := s.fault.Load(); f != nil {
		if err := f.apply(ctx); err != nil {
			return fmt.Errorf("meml2: %s: %w", op, err)
		}
	}
	return nil
}

// Stats counts the calls made through one Store handle since it was made,
// including calls that failed with an injected fault, but not calls refused
// because the handle was closed or ctx was done.
type Stats struct {
	// Gets counts Get calls plus the keys asked for by GetMany calls.
	Gets uint64
	// Hits counts the keys Get and GetMany found.
	Hits uint64
	// Sets counts Set and SetIfNewer calls, stored or not.
	Sets uint64
	// Deletes counts Delete calls.
	Deletes uint64
}

// Stats returns this handle's counters. It is safe for concurrent use, also
// after Close.
func (s *Store) Stats() Stats {
	return Stats{
		Gets:    s.gets.Load(),
		Hits:    s.hits.Load(),
		Sets:    s.sets.Load(),
		Deletes: s.deletes.Load(),
	}
}
