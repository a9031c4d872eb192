package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// The fault layer of L2. Each incarnation of a node gets a simStore over the
// run's one meml2 table: every call waits a latency drawn for it (past the
// caller's timeouts, in an l2-slow window), then may fail, or, for a write,
// report success without storing (lost after the ack) or store and fail (a
// lost reply). The call itself is atomic, at the end of its latency.

var errSimL2 = errors.New("sim: L2 call failed")

type simStore struct {
	w      *world
	inc    *incarnation
	st     *meml2.Store
	closed atomic.Bool
}

var (
	_ l2.Store            = (*simStore)(nil)
	_ l2.ConditionalStore = (*simStore)(nil)
	_ l2.MultiGetter      = (*simStore)(nil)
	_ l2.Locker           = (*simStore)(nil)
)

// callFaults is what the faults decide for one call.
type callFaults struct {
	d                        draw
	fail, lostAck, lostReply bool
	postReply                time.Duration
}

// begin waits out the call's latency, honouring ctx, and returns the faults
// that apply to it (or the error that ends it).
func (s *simStore) begin(ctx context.Context, op, key string, version int64) (callFaults, error) {
	if s.closed.Load() {
		return callFaults{}, fmt.Errorf("sim: l2 %s: %w", op, l2.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return callFaults{}, fmt.Errorf("sim: l2 %s: %w", op, err)
	}
	w := s.w
	now := w.now()
	node := s.inc.node
	h := newHasher(w.seed, "l2")
	h.str(s.inc.label)
	h.str(op)
	h.str(key)
	h.i64(version)
	h.i64(int64(now))
	cf := callFaults{d: h.draw()}
	lat := cf.d.dur(time.Microsecond, w.cfg.L2Latency)
	if f := w.fault(FL2Slow, node, now); f != nil {
		lat += cf.d.dur(0, f.D)
	}
	if f := w.fault(FL2Err, node, now); f != nil {
		cf.fail = cf.d.chance(f.P)
	}
	if f := w.fault(FL2LostAck, node, now); f != nil {
		cf.lostAck = cf.d.chance(f.P)
	}
	if f := w.fault(FL2Ambiguous, node, now); f != nil && cf.d.chance(f.P) {
		cf.lostReply = true
		cf.postReply = cf.d.dur(time.Microsecond, w.cfg.Bound/4)
	}
	t := time.NewTimer(lat)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return cf, fmt.Errorf("sim: l2 %s: %w", op, ctx.Err())
	}
	if cf.fail {
		return cf, fmt.Errorf("sim: l2 %s: %w", op, errSimL2)
	}
	return cf, nil
}

// reply ends a write whose reply is lost: it waits, then fails.
func (s *simStore) reply(ctx context.Context, cf callFaults, op string) error {
	if !cf.lostReply {
		return nil
	}
	t := time.NewTimer(cf.postReply)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	return fmt.Errorf("sim: l2 %s: reply lost: %w", op, errSimL2)
}

func (s *simStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if _, err := s.begin(ctx, "get", key, 0); err != nil {
		s.w.recordL2ReadFailed(ctx, s.inc, key, err)
		return nil, false, err
	}
	v, found, err := s.st.Get(context.Background(), key)
	s.w.recordL2Read(ctx, s.inc, key, v, found)
	return v, found, err
}

func (s *simStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if _, err := s.begin(ctx, "get_many", strings.Join(keys, ","), 0); err != nil {
		return nil, err
	}
	vals, err := s.st.GetMany(context.Background(), keys)
	if err == nil {
		for i, k := range keys {
			s.w.recordL2Read(ctx, s.inc, k, vals[i], vals[i] != nil)
		}
	}
	return vals, err
}

func (s *simStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	cf, err := s.begin(ctx, "set", key, 0)
	if err != nil {
		return err
	}
	if cf.lostAck {
		s.w.recordL2Write(s.inc, key, value, ttl, 0, false, true, false)
		return nil
	}
	if err := s.st.Set(context.Background(), key, value, ttl); err != nil {
		return err
	}
	s.w.recordL2Write(s.inc, key, value, ttl, 0, true, false, cf.lostReply)
	return s.reply(ctx, cf, "set")
}

func (s *simStore) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	cf, err := s.begin(ctx, "set_if_newer", key, version)
	if err != nil {
		return false, err
	}
	if cf.lostAck {
		s.w.recordL2Write(s.inc, key, value, ttl, version, false, true, false)
		return true, nil
	}
	stored, err := s.st.SetIfNewer(context.Background(), key, value, ttl, version)
	if err != nil {
		return false, err
	}
	s.w.recordL2Write(s.inc, key, value, ttl, version, stored, false, cf.lostReply)
	return stored, s.reply(ctx, cf, "set_if_newer")
}

func (s *simStore) Delete(ctx context.Context, key string) error {
	cf, err := s.begin(ctx, "delete", key, 0)
	if err != nil {
		return err
	}
	if cf.lostAck {
		return nil
	}
	if err := s.st.Delete(context.Background(), key); err != nil {
		return err
	}
	s.w.tracef(s.inc, key, "l2 delete %s", key)
	return s.reply(ctx, cf, "delete")
}

func (s *simStore) TryLock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if _, err := s.begin(ctx, "lock", key, 0); err != nil {
		s.w.tracef(s.inc, l2Subject(key), "l2 lock %s: %v", key, err)
		return "", false, err
	}
	tok, ok, err := s.st.TryLock(context.Background(), key, ttl)
	if ok {
		s.w.tracef(s.inc, l2Subject(key), "l2 lock %s taken for %v", key, ttl)
	}
	return tok, ok, err
}

func (s *simStore) Unlock(ctx context.Context, key, token string) error {
	if _, err := s.begin(ctx, "unlock", key, 0); err != nil {
		s.w.tracef(s.inc, l2Subject(key), "l2 unlock %s: %v", key, err)
		return err
	}
	s.w.tracef(s.inc, l2Subject(key), "l2 unlock %s", key)
	return s.st.Unlock(context.Background(), key, token)
}

// Close closes this handle only: the table is the run's.
func (s *simStore) Close() error {
	s.closed.Store(true)
	return nil
}

// decodeEntry reads what core wrote under a key: a tombstone, a marker, or
// an entry whose value is a Val (nil for other values).
func decodeEntry(b []byte) (env l2.Envelope, val *Val, ok bool) {
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		return env, nil, false
	}
	if env.Flags&l2.FlagTombstone == 0 && len(env.Value) > 0 && env.Value[0] == '{' {
		var v Val
		if json.Unmarshal(env.Value, &v) == nil {
			val = &v
		}
	}
	return env, val, true
}
