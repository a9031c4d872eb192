package chaos

import (
	"context"
	"time"

	"github.com/stratacache/strata/l2"
)

// Store is an l2.Store with faults injected by its Injector. The Store
// NewStore returns also implements l2.ConditionalStore and l2.MultiGetter
// when the wrapped store does (check with a type assertion, as core does).
type Store interface {
	l2.Store
	Controls
	// Unwrap returns the wrapped store.
	Unwrap() l2.Store
}

// NewStore wraps inner. Get, Set, Delete, SetIfNewer and GetMany are
// delayed and failed as the Injector decides; a failed call does not reach
// inner. Close is passed through untouched. Invalid options are an error
// naming the field.
func NewStore(inner l2.Store, opts *Options) (Store, error) {
	inj, err := newInjector("NewStore", opts)
	if err != nil {
		return nil, err
	}
	s := &store{Injector: inj, inner: inner}
	_, cond := inner.(l2.ConditionalStore)
	_, multi := inner.(l2.MultiGetter)
	switch {
	case cond && multi:
		return conditionalMultiStore{s}, nil
	case cond:
		return conditionalStore{s}, nil
	case multi:
		return multiStore{s}, nil
	}
	return s, nil
}

// store wraps an l2.Store; the types below add the optional interfaces.
type store struct {
	*Injector
	inner l2.Store
}

type (
	conditionalStore      struct{ *store }
	multiStore            struct{ *store }
	conditionalMultiStore struct{ *store }
)

var (
	_ Store               = (*store)(nil)
	_ l2.ConditionalStore = conditionalStore{}
	_ l2.MultiGetter      = multiStore{}
	_ l2.ConditionalStore = conditionalMultiStore{}
	_ l2.MultiGetter      = conditionalMultiStore{}
)

func (s *store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.before(ctx, "l2 Get"); err != nil {
		return nil, false, err
	}
	return s.inner.Get(ctx, key)
}

func (s *store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.before(ctx, "l2 Set"); err != nil {
		return err
	}
	return s.inner.Set(ctx, key, value, ttl)
}

func (s *store) Delete(ctx context.Context, key string) error {
	if err := s.before(ctx, "l2 Delete"); err != nil {
		return err
	}
	return s.inner.Delete(ctx, key)
}

func (s *store) Close() error { return s.inner.Close() }

func (s *store) Unwrap() l2.Store { return s.inner }

func (s *store) setIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	if err := s.before(ctx, "l2 SetIfNewer"); err != nil {
		return false, err
	}
	return s.inner.(l2.ConditionalStore).SetIfNewer(ctx, key, value, ttl, version)
}

func (s *store) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.before(ctx, "l2 GetMany"); err != nil {
		return nil, err
	}
	return s.inner.(l2.MultiGetter).GetMany(ctx, keys)
}

func (s conditionalStore) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	return s.setIfNewer(ctx, key, value, ttl, version)
}

func (s multiStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	return s.getMany(ctx, keys)
}

func (s conditionalMultiStore) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	return s.setIfNewer(ctx, key, value, ttl, version)
}

func (s conditionalMultiStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	return s.getMany(ctx, keys)
}
