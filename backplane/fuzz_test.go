package backplane

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// FuzzDecodeMessage checks that DecodeMessage never panics, that every error
// wraps ErrCorrupt, and that whatever it accepts encodes back to the same
// bytes. Run it with
//
//	go test -run '^$' -fuzz FuzzDecodeMessage -fuzztime 60s ./backplane
func FuzzDecodeMessage(f *testing.F) {
	golden, _ := hex.DecodeString(goldenHex)
	clear, _ := hex.DecodeString(goldenClearHex)
	f.Add(golden)
	f.Add(clear)
	f.Add([]byte{})
	f.Add([]byte{WireVersion})
	for _, m := range []Message{
		{Cache: "c", Source: "s", Seq: 1, Action: ActionSet},
		{Cache: "orders", Source: "node-2", Seq: 1 << 40, Action: ActionRemove, Key: "order:\x00\xff", Timestamp: -5},
		{Cache: "c", Source: "s", Seq: 2, Action: ActionRemoveTag, Key: "tenant:7", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{Cache: "c", Source: "s", Seq: 3, Action: ActionExpireTag, Key: "t"},
		{Cache: "c", Source: "s", Seq: 4, Action: ActionClearRemove},
		{Cache: "c", Source: "s", Seq: 5, Action: ActionSet, Key: "k", Value: []byte("an entry")},
	} {
		b, err := m.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeMessage error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		out, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("DecodeMessage accepted %x as %+v, which AppendBinary refuses: %v", data, m, err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip changed the bytes:\n in %x\nout %x", data, out)
		}
	})
}
