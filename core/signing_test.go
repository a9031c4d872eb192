package core_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
)

// TestSpoofedMessagesRejected: with signing on, a party that can publish on
// the channel but lacks the key cannot evict, expire or clear anything; every
// spoofed message is rejected and counted, while signed traffic flows.
func TestSpoofedMessagesRejected(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("s"), 32)
	nodes := newCluster(t, 2, func(o *core.Options) { o.BackplaneSigningKeys = [][]byte{key} })
	a, b := nodes[0], nodes[1]
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	mustGetOrSet(t, b.Cache, "k", constant("unused"), core.WithDuration(time.Hour))

	// The attacker publishes well-formed messages, unsigned and signed with
	// a wrong key, on the cache's channel from a node of its own.
	attacker := a.bp // any connection to the bus will do
	wrong, _ := backplane.NewKeyring(bytes.Repeat([]byte("w"), 32))
	actions := []backplane.Action{backplane.ActionRemove, backplane.ActionExpire, backplane.ActionSet, backplane.ActionClearRemove, backplane.ActionRemoveTag}
	sent := 0
	for i, act := range actions {
		m := backplane.Message{Cache: "cluster", Source: "attacker", Seq: uint64(i + 1), Action: act, Key: "k", Timestamp: time.Now().Add(time.Hour).UnixNano()}
		if act == backplane.ActionClearRemove {
			m.Key = ""
		}
		raw, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := wrong.Seal(bytes.Clone(raw))
		for _, p := range [][]byte{raw, forged} {
			if err := attacker.Publish(ctx, backplane.ChannelName("cluster"), p); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	waitFor(t, "every spoofed message rejected", func() bool { return b.Stats().BackplaneRejected >= uint64(sent) })
	if v, ok := get(t, b.Cache, "k"); !ok || v != "v1" {
		t.Fatalf("B serves %q, %v after %d spoofed messages; want v1 untouched", v, ok, sent)
	}
	// Signed traffic still works.
	core.Set(ctx, a.Cache, "k", "v2", core.WithDuration(time.Hour))
	waitFor(t, "signed update", func() bool { v, _ := get(t, b.Cache, "k"); return v == "v2" })
}

func TestSigningKeysValidated(t *testing.T) {
	var oe *core.OptionError
	if _, err := core.New(core.Options{BackplaneSigningKeys: [][]byte{[]byte("short")}}); !errors.As(err, &oe) {
		t.Fatalf("short key without backplane = %v", err)
	}
}
