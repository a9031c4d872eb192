package redisl2

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/rediscall"
)

// GetMany returns the value of each key, in order: nil for a missing or
// expired key, a non-nil empty slice for an empty value. On a client that
// talks to one node (*redis.Client: single node or failover) it sends one
// MGET. On any other client (*redis.ClusterClient, *redis.Ring), whose keys
// may live on several nodes, it pipelines one GET per key instead: go-redis
// splits the pipeline by node and sends each node its part in one round
// trip, in parallel. A value the Store did not write is returned whole, as
// Get returns it; a key of another Redis type is nil, as missing (MGET
// answers it so).
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.begin(ctx, "get many"); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return [][]byte{}, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.prefix + k
	}
	get := s.pipelinedGets
	if s.mget {
		get = s.mgetAll
	}
	vals, err := rediscall.Do(s.call, ctx, func(ctx context.Context) ([][]byte, error) { return get(ctx, full) })
	if err != nil {
		return nil, wrap(ctx, "get many", err)
	}
	for i, raw := range vals {
		if raw != nil {
			vals[i] = entryValue(raw)
		}
	}
	return vals, nil
}

// mgetAll reads keys with one MGET; nil for a missing key.
func (s *Store) mgetAll(ctx context.Context, keys []string) ([][]byte, error) {
	res, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	if len(res) != len(keys) {
		return nil, fmt.Errorf("MGET of %d keys returned %d values", len(keys), len(res))
	}
	vals := make([][]byte, len(keys))
	for i, r := range res {
		switch v := r.(type) {
		case nil:
		case string:
			vals[i] = []byte(v)
		default:
			return nil, fmt.Errorf("MGET returned a %T for key %d", r, i)
		}
	}
	return vals, nil
}

// pipelinedGets reads keys with one pipelined GET each; nil for a missing
// key, and for a key of another type (as MGET has it).
func (s *Store) pipelinedGets(ctx context.Context, keys []string) ([][]byte, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	// Exec returns the first command's error; a reply error (redis.Nil,
	// WRONGTYPE) concerns one key only, and is looked at per command.
	var reply redis.Error
	if _, err := pipe.Exec(ctx); err != nil && !errors.As(err, &reply) {
		return nil, err
	}
	vals := make([][]byte, len(keys))
	for i, cmd := range cmds {
		v, err := cmd.Bytes()
		switch {
		case errors.Is(err, redis.Nil), redis.HasErrorPrefix(err, "WRONGTYPE"):
		case err != nil:
			return nil, err
		default:
			vals[i] = v
		}
	}
	return vals, nil
}
