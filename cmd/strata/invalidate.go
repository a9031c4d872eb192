package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
)

const invalidateAbout = `Removes (or, with -expire, expires) keys, tags or the whole cache the way
a node's Cache.Remove, RemoveByTag and Clear (Expire, ExpireByTag and
Clear(true)) do: first the L2 write (a tombstone for a key, a marker for a
tag or a Clear), then the backplane message, signed when keys are given.
The exit status is 0 only when every L2 write and every publish succeeded.`

// Default values of invalidate's flags.
const (
	defaultTimeout  = 10 * time.Second
	defaultInstance = "strata-cli"
)

// invalidation is one change to make, in the order given.
type invalidation struct {
	what  string // "key", "tag", "clear"
	name  string // the key or the tag
	apply func(ctx context.Context, c *core.Cache, opts ...core.EntryOption) error
}

func runInvalidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "invalidate"
	fs := newFlagSet(cmd, "-backplane URL [-l2 URL] -cache NAME [-key-prefix P] [-key K]... [-tag T]... [-clear] [-expire]", invalidateAbout, stderr)
	bpURL := fs.String("backplane", "", "backplane `URL` of the cache's nodes (redis://, nats://, amqp://, ...)")
	l2URL := fs.String("l2", "", "L2 `URL` of the cache's nodes (redis://, nats://); without it only messages are sent")
	name := fs.String("cache", "", "cache `NAME` (core.Options.Name); required")
	prefix := fs.String("key-prefix", "", "the cache's core.Options.KeyPrefix (prepended to keys in L2)")
	var keys, tags stringList
	fs.Var(&keys, "key", "`KEY` to remove (or expire); repeat for several")
	fs.Var(&tags, "tag", "`TAG` whose entries to remove (or expire); repeat for several")
	clearAll := fs.Bool("clear", false, "remove (or expire) every entry of the cache")
	expire := fs.Bool("expire", false, "expire instead of remove: fail-safe may still serve the old values")
	keysFile := fs.String("keys-file", "", "`FILE` of backplane signing keys (default: $"+SigningKeysEnv+")")
	var changedAt timeFlag
	fs.Var(&changedAt, "changed-at", "`TIME` the change was made at its source (RFC 3339 or Unix ns): the version is no older (core.WithChangedAt)")
	markerTTL := fs.Duration("marker-ttl", core.DefaultMarkerTTL, "the cache's core.Options.MarkerTTL: how long tag and Clear markers stay in L2")
	tombstoneTTL := fs.Duration("tombstone-ttl", core.DefaultTombstoneTTL, "the cache's core.Options.TombstoneTTL: how long a removed key's tombstone stays in L2")
	timeout := fs.Duration("timeout", defaultTimeout, "bound on the whole command (opening, each L2 write and publish)")
	instance := fs.String("instance-id", defaultInstance, "`ID` the messages come from (core.Options.InstanceID; a run id is added)")
	verbose := fs.Bool("v", false, "log what core logs (warnings and up) to stderr")
	if code := fs.parse(args, stdout); code >= 0 {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, cmd, "unexpected argument %q (keys are given with -key)", fs.Arg(0))
	case *name == "":
		return usageError(stderr, cmd, "-cache is required")
	case len(*name) > backplane.MaxCacheNameLen:
		return usageError(stderr, cmd, "-cache %q is %d bytes, at most %d allowed", *name, len(*name), backplane.MaxCacheNameLen)
	case *bpURL == "" && *l2URL == "":
		return usageError(stderr, cmd, "-backplane (and usually -l2) is required")
	case len(keys) == 0 && len(tags) == 0 && !*clearAll:
		return usageError(stderr, cmd, "nothing to invalidate: give -key, -tag or -clear")
	case *timeout <= 0:
		return usageError(stderr, cmd, "-timeout %v must be positive", *timeout)
	case *tombstoneTTL <= 0:
		return usageError(stderr, cmd, "-tombstone-ttl %v must be positive", *tombstoneTTL)
	case *markerTTL <= 0:
		return usageError(stderr, cmd, "-marker-ttl %v must be positive", *markerTTL)
	case *instance == "":
		return usageError(stderr, cmd, "-instance-id must not be empty")
	}
	signing, err := signingKeys(*keysFile)
	if err != nil {
		return usageError(stderr, cmd, "%v", err)
	}
	if *bpURL == "" && len(signing) > 0 {
		signing = nil // nothing to sign
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var store l2.Store
	if *l2URL != "" {
		if store, err = l2.Open(ctx, *l2URL); err != nil {
			return failure(stderr, cmd, fmt.Errorf("-l2: %w", err))
		}
		defer store.Close()
	}
	var bp backplane.Backplane
	if *bpURL != "" {
		if bp, err = backplane.Open(ctx, *bpURL); err != nil {
			return failure(stderr, cmd, fmt.Errorf("-backplane: %w", err))
		}
		defer bp.Close()
	}

	t := &tally{}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	eo := core.DefaultEntryOptions()
	eo.L2HardTimeout = *timeout
	o := core.Options{
		Name:                 *name,
		KeyPrefix:            *prefix,
		InstanceID:           *instance,
		DefaultEntryOptions:  &eo,
		L1MaxEntries:         16,
		Logger:               logger,
		Observers:            []core.Observer{t},
		AutoRecoveryDisabled: true, // a write that fails is reported, not replayed after exit
		TombstoneTTL:         *tombstoneTTL,
		MarkerTTL:            *markerTTL,
	}
	if store != nil {
		o.L2 = store
	}
	if bp != nil {
		o.Backplane = bp
		o.BackplaneSigningKeys = signing
		o.BackplanePublishTimeout = *timeout
		o.BackplaneProbeInterval = -1 // publish nothing but the changes
	}
	c, err := core.New(o)
	if err != nil {
		var oe *core.OptionError
		if errors.As(err, &oe) {
			return usageError(stderr, cmd, "%v", err)
		}
		return failure(stderr, cmd, err)
	}
	var opts []core.EntryOption
	if !changedAt.t.IsZero() {
		opts = append(opts, core.WithChangedAt(changedAt.t))
	}
	var todo []invalidation
	for _, k := range keys {
		apply := func(ctx context.Context, c *core.Cache, opts ...core.EntryOption) error {
			return c.Remove(ctx, k, opts...)
		}
		if *expire {
			apply = func(ctx context.Context, c *core.Cache, opts ...core.EntryOption) error {
				return c.Expire(ctx, k, opts...)
			}
		}
		todo = append(todo, invalidation{"key", k, apply})
	}
	for _, tag := range tags {
		apply := func(ctx context.Context, c *core.Cache, opts ...core.EntryOption) error {
			return c.RemoveByTag(ctx, tag, opts...)
		}
		if *expire {
			apply = func(ctx context.Context, c *core.Cache, opts ...core.EntryOption) error {
				return c.ExpireByTag(ctx, tag, opts...)
			}
		}
		todo = append(todo, invalidation{"tag", tag, apply})
	}
	if *clearAll {
		allowFailSafe := *expire
		todo = append(todo, invalidation{"clear", "", func(ctx context.Context, c *core.Cache, opts ...core.EntryOption) error {
			return c.Clear(ctx, allowFailSafe, opts...)
		}})
	}

	verb := "removed"
	if *expire {
		verb = "expired"
	}
	var failed []string
	done, seen := 0, 0
	for _, inv := range todo {
		if ctx.Err() != nil {
			failed = append(failed, fmt.Sprintf("%s not done: %v", inv.label(), context.Cause(ctx)))
			continue
		}
		before := t.snapshot()
		if err := inv.apply(ctx, c, opts...); err != nil {
			failed = append(failed, fmt.Sprintf("-%s %q: %v", inv.what, inv.name, err))
			continue
		}
		after := t.snapshot()
		errs := after.errs[len(before.errs):]
		seen = len(after.errs)
		if len(errs) == 0 && store != nil && after.l2OK == before.l2OK {
			errs = append(errs, "no L2 write made")
		}
		if len(errs) == 0 && bp != nil && after.pubOK == before.pubOK {
			errs = append(errs, "no message published")
		}
		if len(errs) > 0 {
			failed = append(failed, fmt.Sprintf("%s: %s", inv.label(), strings.Join(errs, ", ")))
			continue
		}
		done++
		fmt.Fprintf(stdout, "%s %s\n", verb, inv.label())
	}
	stats := c.Stats()
	if err := c.Close(); err != nil {
		failed = append(failed, fmt.Sprintf("closing: %v", err))
	}
	final := t.snapshot()
	failed = append(failed, final.errs[seen:]...)
	if len(failed) == 0 {
		// Nothing reported a failure: check that every write and publish
		// was made, and that core dropped none it would have retried
		// (auto-recovery is off here).
		if want := len(todo); store != nil && final.l2OK != want {
			failed = append(failed, fmt.Sprintf("%d of %d L2 writes made", final.l2OK, want))
		}
		if want := len(todo); bp != nil && final.pubOK != want {
			failed = append(failed, fmt.Sprintf("%d of %d messages published", final.pubOK, want))
		}
		if stats.RecoveryDropped > 0 {
			failed = append(failed, fmt.Sprintf("%d L2 writes or publishes failed and were not retried", stats.RecoveryDropped))
		}
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintf(stderr, "%s %s: %s\n", programName, cmd, f)
		}
		fmt.Fprintf(stderr, "%s %s: FAILED: %d of %d invalidations fully written and published\n", programName, cmd, done, len(todo))
		return exitFailed
	}
	where := []string{}
	if store != nil {
		where = append(where, "L2")
	}
	if bp != nil {
		where = append(where, "backplane channel "+backplane.ChannelName(*name))
	}
	fmt.Fprintf(stdout, "ok: %d invalidations written to %s\n", len(todo), strings.Join(where, " and "))
	return exitOK
}

func (inv invalidation) label() string {
	if inv.what == "clear" {
		return "every entry (clear)"
	}
	return fmt.Sprintf("%s %q", inv.what, inv.name)
}

// tally is an Observer that counts the L2 writes and the publishes the
// cache made, and keeps their errors: core's Remove, RemoveByTag and Clear
// report neither (a failure goes to auto-recovery, off here).
type tally struct {
	mu    sync.Mutex
	l2OK  int
	pubOK int
	errs  []string
}

type tallySnapshot struct {
	l2OK, pubOK int
	errs        []string
}

func (t *tally) snapshot() tallySnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tallySnapshot{t.l2OK, t.pubOK, append([]string(nil), t.errs...)}
}

func (t *tally) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }

func (t *tally) OpEnd(_ context.Context, op *core.OpInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch op.Op {
	case core.OpL2Set, core.OpL2Delete:
		if op.Err != nil {
			t.errs = append(t.errs, fmt.Sprintf("L2 write of %q failed: %v", op.Key, op.Err))
			return
		}
		t.l2OK++
	case core.OpBackplanePublish:
		if op.Err != nil {
			t.errs = append(t.errs, fmt.Sprintf("publish of %s %q failed: %v", op.Action, op.Key, op.Err))
			return
		}
		t.pubOK++
	}
}

func (t *tally) Event(context.Context, core.Event) {}
