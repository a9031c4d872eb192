// Package chaos injects faults into the distributed parts of a cache: it
// wraps any l2.Store (NewStore), backplane.Backplane (NewBackplane) and
// serializer.Serializer (NewSerializer) so that their calls fail, or are
// slow, and backplane messages get lost — at random, at a rate you choose,
// switchable while the cache runs. Use it in tests and in failure drills to
// check that a service keeps answering (fail-safe, timeouts, auto-recovery)
// and that nodes converge once the faults stop.
//
// Each wrapper has its own Injector, which holds the settings:
//
//   - Mode: Never (pass everything through), Maybe (draw faults at the
//     rates below; the default) or Always (every call fails, every message
//     is dropped);
//   - FailureRate: the probability that a call fails with an error wrapping
//     ErrInjected, without reaching the wrapped component;
//   - MinDelay and MaxDelay: every call (in Maybe and Always modes) first
//     waits a random time in [MinDelay, MaxDelay], returning early with an
//     error wrapping ctx.Err() when its context ends;
//   - DropRate: the probability that a backplane message is silently not
//     delivered (no state change is reported: only the sender's sequence
//     numbers can reveal the loss).
//
// Settings change at any time (SetMode, SetFailureRate, SetDelay,
// SetDropRate), from any goroutine. Faults are drawn from a random number
// generator seeded by Options.Seed: one goroutine making the same calls with
// the same seed sees the same faults (calls from several goroutines draw in
// the order they happen). Stats counts what was injected.
//
// A Store wrapper implements l2.ConditionalStore and l2.MultiGetter exactly
// when the wrapped store does, so core uses the same code paths with and
// without chaos.
package chaos
