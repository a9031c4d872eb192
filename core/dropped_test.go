package core_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
)

// logCounter is a slog.Handler that keeps every record it is given.
type logCounter struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

// matching returns the records whose message contains msg.
func (h *logCounter) matching(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var rs []slog.Record
	for _, r := range h.records {
		if strings.Contains(r.Message, msg) {
			rs = append(rs, r)
		}
	}
	return rs
}

// attr returns the value of the attribute named key of r.
func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// events returns the events of kind k the recorder was told about.
func (r *recorder) eventsOf(k core.EventKind) []core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []core.Event
	for _, e := range r.events {
		if e.Kind == k {
			evs = append(evs, e)
		}
	}
	return evs
}

// encode returns m's wire form.
func encode(t *testing.T, m backplane.Message) []byte {
	t.Helper()
	raw, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// spoofMsg is a well-formed message from a node that is not in the cluster.
func spoofMsg(seq uint64) backplane.Message {
	return backplane.Message{Cache: "cluster", Source: "attacker", Seq: seq, Action: backplane.ActionRemove,
		Key: "k", Timestamp: time.Now().Add(time.Hour).UnixNano()}
}

// TestDroppedBackplaneMessagesReachObservers: a message dropped for a missing
// or bad signature is told to observers as EventBackplaneRejected, one that
// cannot be decoded as EventBackplaneCorrupt, each with an error saying what
// was wrong; messages that are applied tell neither.
func TestDroppedBackplaneMessagesReachObservers(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("s"), 32)
	right, _ := backplane.NewKeyring(key)
	wrong, _ := backplane.NewKeyring(bytes.Repeat([]byte("w"), 32))
	rec := &recorder{}
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneSigningKeys = [][]byte{key}
		if o.InstanceID == "node-1" {
			o.Observers = []core.Observer{rec}
		}
	})
	a, b := nodes[0], nodes[1]

	// Good traffic first: no drop event.
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	waitFor(t, "a signed message applied", func() bool { return b.Stats().BackplaneReceived >= 1 })
	if evs := append(rec.eventsOf(core.EventBackplaneRejected), rec.eventsOf(core.EventBackplaneCorrupt)...); len(evs) != 0 {
		t.Fatalf("a good message told observers %v", evs)
	}

	raw := encode(t, spoofMsg(1))
	forged, _ := wrong.Seal(bytes.Clone(raw))
	// Signed with the right key but truncated before signing: only a key
	// holder can send it, and it cannot be decoded.
	truncated, _ := right.Seal(bytes.Clone(raw[:len(raw)-3]))
	// Signed with the right key, but of another wire version.
	otherVersion := bytes.Clone(raw)
	otherVersion[0] = backplane.WireVersion + 1
	otherVersion[1] |= backplane.FlagSigned
	otherVersion = signWith(key, otherVersion)

	tests := []struct {
		name    string
		payload []byte
		kind    core.EventKind
		is      error
		says    string
	}{
		{"unsigned", raw, core.EventBackplaneRejected, backplane.ErrBadSignature, "unsigned"},
		{"wrong key", forged, core.EventBackplaneRejected, backplane.ErrBadSignature, "matches none of 1 keys"},
		{"garbage", []byte{0xde, 0xad}, core.EventBackplaneRejected, backplane.ErrBadSignature, "too short (2 bytes)"},
		{"truncated", truncated, core.EventBackplaneCorrupt, backplane.ErrCorrupt, "offset"},
		{"wrong version", otherVersion, core.EventBackplaneCorrupt, backplane.ErrCorrupt, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.eventsOf(tt.kind))
			if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), tt.payload); err != nil {
				t.Fatal(err)
			}
			waitFor(t, tt.kind.String()+" event", func() bool { return len(rec.eventsOf(tt.kind)) > before })
			ev := rec.eventsOf(tt.kind)[before]
			if ev.Cache != "cluster" || ev.Key != "" {
				t.Errorf("event cache %q, key %q; want cluster and no key", ev.Cache, ev.Key)
			}
			if !errors.Is(ev.Err, tt.is) || !strings.Contains(ev.Err.Error(), tt.says) {
				t.Errorf("event error %v; want one wrapping %v that says %q", ev.Err, tt.is, tt.says)
			}
		})
	}
	if got := b.Stats(); got.BackplaneRejected != 3 || got.BackplaneCorrupt != 2 {
		t.Errorf("Stats rejected %d, corrupt %d; want 3, 2", got.BackplaneRejected, got.BackplaneCorrupt)
	}
	if v, ok := get(t, b.Cache, "k"); !ok || v != "v1" {
		t.Errorf("B serves %q, %v after dropped messages; want v1", v, ok)
	}
	if n := rec.count(core.OpBackplaneReceive); n != 1 {
		t.Errorf("%d backplane.receive ops; want 1 (dropped messages get none)", n)
	}
}

// signWith appends the HMAC-SHA256 of body under key to body, whatever body
// holds (Keyring.Seal refuses what is not a current message).
func signWith(key, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return mac.Sum(body)
}

// TestDroppedBackplaneMessagesLogRateLimited: a flood of rejected or corrupt
// messages gives one Warn record per kind per second, each counting the
// messages dropped without a record since the one before.
func TestDroppedBackplaneMessagesLogRateLimited(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("s"), 32)
	right, _ := backplane.NewKeyring(key)
	logs := &logCounter{}
	clock := newFakeClock()
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneSigningKeys = [][]byte{key}
		if o.InstanceID == "node-1" {
			o.Logger = slog.New(logs)
			o.Clock = clock
		}
	})
	a, b := nodes[0], nodes[1]
	raw := encode(t, spoofMsg(1))
	corrupt, _ := right.Seal(bytes.Clone(raw[:len(raw)-1]))
	const rejectedMsg = "strata: backplane message without a valid signature dropped"
	const corruptMsg = "strata: undecodable backplane message dropped"

	flood := func(n int) {
		t.Helper()
		want := b.Stats().BackplaneRejected + uint64(n)
		wantCorrupt := b.Stats().BackplaneCorrupt + uint64(n)
		for range n {
			for _, p := range [][]byte{raw, corrupt} {
				if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), p); err != nil {
					t.Fatal(err)
				}
			}
		}
		waitFor(t, "flood dropped", func() bool {
			s := b.Stats()
			return s.BackplaneRejected >= want && s.BackplaneCorrupt >= wantCorrupt
		})
	}
	check := func(msg string, records int, suppressed uint64) {
		t.Helper()
		rs := logs.matching(msg)
		if len(rs) != records {
			t.Fatalf("%d records %q; want %d", len(rs), msg, records)
		}
		last := rs[len(rs)-1]
		if last.Level != slog.LevelWarn {
			t.Errorf("%q logged at %v; want WARN", msg, last.Level)
		}
		if got := attr(last, "suppressed").Uint64(); got != suppressed {
			t.Errorf("%q record %d: suppressed=%d; want %d", msg, records, got, suppressed)
		}
		if attr(last, "err").Any() == nil {
			t.Errorf("%q record has no err", msg)
		}
	}

	flood(100)
	check(rejectedMsg, 1, 0)
	check(corruptMsg, 1, 0)
	clock.Advance(500 * time.Millisecond)
	flood(10)
	check(rejectedMsg, 1, 0)
	check(corruptMsg, 1, 0)
	clock.Advance(600 * time.Millisecond)
	flood(1)
	// The first of the 100, then the 99 others and 10 unlogged.
	check(rejectedMsg, 2, 109)
	check(corruptMsg, 2, 109)
	for _, msg := range []string{rejectedMsg, corruptMsg} {
		if rs := logs.matching(msg); attr(rs[1], "total").Uint64() != 111 {
			t.Errorf("%q record 2: total=%v; want 111", msg, attr(rs[1], "total"))
		}
	}
}

// TestCorruptCarriedEntriesDroppedAsCorrupt: set messages whose carried
// entry is garbage are applied as plain invalidations, and their entries
// dropped as corrupt like undecodable messages: counted, told to observers
// with an error wrapping l2.ErrCorrupt, and logged at most once per second
// however many come.
func TestCorruptCarriedEntriesDroppedAsCorrupt(t *testing.T) {
	ctx := context.Background()
	rec, logs := &recorder{}, &logCounter{}
	nodes := newCluster(t, 2, func(o *core.Options) {
		if o.InstanceID == "node-1" {
			o.Observers, o.Logger = []core.Observer{rec}, slog.New(logs)
		}
	})
	a, b := nodes[0], nodes[1]
	const n = 50
	for i := range n {
		m := backplane.Message{Cache: "cluster", Source: "attacker", Seq: uint64(i + 1), Action: backplane.ActionSet,
			Key: "k", Timestamp: time.Now().UnixNano(), Value: []byte("not an entry")}
		if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), encode(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every message applied", func() bool { return b.Stats().BackplaneReceived == n })
	if s := b.Stats(); s.BackplaneCorrupt != n || s.BackplaneValues != 0 {
		t.Fatalf("BackplaneCorrupt %d, BackplaneValues %d; want %d and 0", s.BackplaneCorrupt, s.BackplaneValues, n)
	}
	evs := rec.eventsOf(core.EventBackplaneCorrupt)
	if len(evs) != n || !errors.Is(evs[0].Err, l2.ErrCorrupt) {
		t.Fatalf("%d corrupt events (first: %v), want %d wrapping l2.ErrCorrupt", len(evs), evs, n)
	}
	if got := len(logs.matching("entry a backplane message carried")); got < 1 || got > 2 {
		t.Fatalf("%d log records for %d corrupt entries within a second, want 1 (rate-limited)", got, n)
	}
}
