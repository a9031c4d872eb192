package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"

	// The L2 URL scheme NewUpdatePath opens.
	_ "github.com/stratacache/strata/l2/redisl2"
)

// UpdateOptions are the variants of NewUpdatePath.
type UpdateOptions struct {
	// ValueOnBackplane makes A's Set carry the encoded entry on the
	// backplane (core.WithValueOnBackplane), so that B installs it in L1
	// and serves it without reading L2.
	ValueOnBackplane bool
}

// updateKey is the key the update paths change (under a prefix of their
// own in Redis).
const updateKey = "profile:42"

// NewUpdatePath makes two strata nodes, A and B, each with a Redis L2 (on
// s.RedisAddr, under a key prefix of the path's own) and a backplane of
// the given transport; B holds the key in L1. Each trip i is: A calls
// core.Set of the value strconv.Itoa(i); B, told by its observer that it
// has applied the backplane message for the key, calls core.GetOrSet and
// gets the new value (from L2; from the message itself with
// opts.ValueOnBackplane). The trip ends when B has it in hand, and fails if
// B serves anything else. ctx bounds the set-up; Close releases every
// cache, store, backplane, exchange and Redis key it makes.
func NewUpdatePath(ctx context.Context, s Servers, transport string, opts UpdateOptions) (_ *Path, err error) {
	url, err := s.backplaneURL(transport)
	if err != nil {
		return nil, err
	}
	var setOpts []core.EntryOption
	what := "strata " + transport
	if opts.ValueOnBackplane {
		setOpts = append(setOpts, core.WithValueOnBackplane(true))
		what += " (value on backplane)"
	}
	setOpts = append(setOpts, core.WithDuration(time.Hour))
	name := "strata-bench-" + unique()
	prefix := name + ":"
	obs := &applied{key: updateKey, got: make(chan time.Time, 1)}
	p := &Path{what: what, got: obs.got}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	// First, so released last, after the caches: the key the path wrote,
	// and for amqp the exchange (a live backplane would declare it again).
	p.closers = append(p.closers, func() error { return deleteRedisKey(s.RedisAddr, prefix+updateKey) })
	if transport == "amqp" {
		p.closers = append(p.closers, func() error { return deleteExchange(s.AMQPURL, backplane.ChannelName(name)) })
	}
	nodes, err := p.openNodes(ctx, name, url, "redis://"+s.RedisAddr+"?key_prefix="+prefix, obs)
	if err != nil {
		return nil, err
	}
	a, b := nodes[0], nodes[1]
	// B holds the key in L1 before the first trip.
	if _, err := core.GetOrSet(ctx, b, updateKey, func(context.Context, *core.FactoryContext[string]) (string, error) {
		return "warm", nil
	}, core.WithDuration(time.Hour)); err != nil {
		return nil, fmt.Errorf("bench: %s: warming B: %w", what, err)
	}
	p.send = func(ctx context.Context, i int) error {
		return core.Set(ctx, a, updateKey, strconv.Itoa(i), setOpts...)
	}
	p.serve = func(ctx context.Context, i int) error {
		v, err := core.GetOrSet(ctx, b, updateKey, noFactory, core.WithDuration(time.Hour))
		if err != nil {
			return fmt.Errorf("B's GetOrSet: %w", err)
		}
		return checkServed(v, i)
	}
	return p, nil
}

// noFactory is B's factory on the update path: B must find the value A
// set, in L1 or L2, never need to make it.
func noFactory(context.Context, *core.FactoryContext[string]) (string, error) {
	return "", errors.New("bench: B called its factory: the value A set is neither in its L1 nor in L2")
}

// checkServed fails unless v is the value of trip i.
func checkServed(v string, i int) error {
	if want := strconv.Itoa(i); v != want {
		return fmt.Errorf("B served %q, want %q", v, want)
	}
	return nil
}

// NewRawUpdatePath is the floor under NewUpdatePath's trips, made with the
// raw clients: each trip i is a go-redis SET of strconv.Itoa(i) on
// s.RedisAddr by A, then A's publish of a 100-byte message on the
// transport's own client (go-redis PUBLISH, nats.go, an amqp091-go fanout
// exchange); B's subscriber receives it and B (on the trip's goroutine, as
// on the strata path) makes a go-redis GET of the key. The trip ends when B
// has the value in hand, and fails if it is not the one set. ctx bounds
// the set-up; Close releases every connection, exchange and Redis key it
// makes.
func NewRawUpdatePath(ctx context.Context, s Servers, transport string) (_ *Path, err error) {
	if _, err := s.backplaneURL(transport); err != nil {
		return nil, err
	}
	p := &Path{what: "raw " + transport}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	name := "strata-bench-raw-" + unique()
	key := name + ":" + updateKey
	p.closers = append(p.closers, func() error { return deleteRedisKey(s.RedisAddr, key) })
	// Each node's data client, as each strata node has its L2's.
	a := redis.NewClient(&redis.Options{Addr: s.RedisAddr, ContextTimeoutEnabled: true})
	b := redis.NewClient(&redis.Options{Addr: s.RedisAddr, ContextTimeoutEnabled: true})
	p.closers = append(p.closers, a.Close, b.Close)
	if err := a.Set(ctx, key, "warm", time.Hour).Err(); err != nil {
		return nil, fmt.Errorf("bench: raw %s: SET: %w", transport, err)
	}
	publish, got, err := p.openRaw(ctx, s, transport, name)
	if err != nil {
		return nil, err
	}
	p.got = got
	p.send = func(ctx context.Context, i int) error {
		if err := a.Set(ctx, key, strconv.Itoa(i), time.Hour).Err(); err != nil {
			return err
		}
		return publish(ctx)
	}
	p.serve = func(ctx context.Context, i int) error {
		v, err := b.Get(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("B's GET: %w", err)
		}
		return checkServed(v, i)
	}
	return p, nil
}

// Interleave makes rounds of trips on paths, one trip per path in turn in
// each round, so that the load of a shared machine falls on all alike: 20
// unmeasured rounds, then n measured ones. It returns each path's n
// durations, in the order of paths, unsorted.
func Interleave(ctx context.Context, n int, paths ...*Path) ([][]time.Duration, error) {
	lat := make([][]time.Duration, len(paths))
	for i := range lat {
		lat[i] = make([]time.Duration, 0, n)
	}
	for round := range warmup + n {
		for i, p := range paths {
			d, err := p.Trip(ctx)
			if err != nil {
				return nil, err
			}
			if round >= warmup {
				lat[i] = append(lat[i], d)
			}
		}
	}
	return lat, nil
}

// applied is B's observer on the update path: it sends the time at which
// B has applied a backplane message about key. It waits for the end of
// the receive (OpEnd of OpBackplaneReceive), not EventBackplaneReceived,
// which core reports before it applies the message: a read made on that
// event could still find the old value in L1.
type applied struct {
	key string
	got chan time.Time
}

func (o *applied) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }
func (o *applied) Event(context.Context, core.Event)                           {}
func (o *applied) OpEnd(_ context.Context, op *core.OpInfo) {
	if op.Op == core.OpBackplaneReceive && op.Key == o.key {
		select {
		case o.got <- time.Now():
		default:
		}
	}
}

// HitRecorder keeps B's L1 hits free of OpStart and OpEnd, as for a cache
// without observers (core.HitObserver).
func (o *applied) HitRecorder(string) core.HitRecorder { return noHits{} }

type noHits struct{}

func (noHits) WantsHitOp(context.Context) bool { return false }
func (noHits) Hit(context.Context, bool)       {}

// deleteRedisKey deletes a key a path wrote (the server is shared).
func deleteRedisKey(addr, key string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("bench: delete Redis key %q: %w", key, err)
	}
	return nil
}
