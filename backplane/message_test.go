package backplane

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// goldenMessage and goldenHex are the example of docs/wire-format.md
// ("## Backplane message"); TestMessageGolden keeps the two in step.
var goldenMessage = Message{
	Cache:       "users",
	Source:      "node-1",
	Seq:         42,
	Action:      ActionSet,
	Key:         "user:42",
	Timestamp:   1700000000000000000,
	TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}

const goldenHex = "" +
	"01" + // version
	"00" + // flags
	"01" + // action: set
	"2a00000000000000" + // seq 42
	"00002a36fe9c9717" + // timestamp 1700000000000000000
	"05" + "7573657273" + // cache "users"
	"06" + "6e6f64652d31" + // source "node-1"
	"37" + "30302d34626639326633353737623334646136613363653932396430653065343733362d303066303637616130626139303262372d3031" + // traceparent
	"0700" + "757365723a3432" // key "user:42"

// goldenClearHex is a clear (no key, no traceparent): the shortest kind of
// message for its cache and source.
const goldenClearHex = "010007070000000000000000002a36fe9c9717057573657273066e6f64652d31000000"

func TestMessageGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
		hex  string
	}{
		{"set", goldenMessage, goldenHex},
		{"clear", Message{Cache: "users", Source: "node-1", Seq: 7, Action: ActionClearExpire, Timestamp: 1700000000000000000}, goldenClearHex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.m.AppendBinary(nil)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendBinary =\n%x\nwant\n%x", got, want)
			}
			back, err := DecodeMessage(want)
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if !reflect.DeepEqual(back, tc.m) {
				t.Fatalf("DecodeMessage = %+v, want %+v", back, tc.m)
			}
		})
	}
}

func TestAppendBinaryAppends(t *testing.T) {
	prefix := []byte("prefix")
	out, err := goldenMessage.AppendBinary(prefix)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(goldenHex)
	if !bytes.Equal(out, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendBinary(prefix) = %x", out)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	long := func(n int) string { return strings.Repeat("k", n) }
	for _, m := range []Message{
		{Cache: "c", Source: "s", Seq: 1, Action: ActionSet, Key: ""},
		{Cache: "c", Source: "s", Seq: ^uint64(0), Action: ActionRemove, Key: "k", Timestamp: -1},
		{Cache: "c", Source: "s", Seq: 3, Action: ActionExpire, Key: "\x00\xff binary \n key"},
		{Cache: "c", Source: "s", Seq: 4, Action: ActionRemoveTag, Key: "tenant:7"},
		{Cache: "c", Source: "s", Seq: 5, Action: ActionExpireTag, Key: "tenant:7"},
		{Cache: "c", Source: "s", Seq: 6, Action: ActionClearRemove},
		{Cache: "c", Source: "s", Seq: 7, Action: ActionClearExpire},
		{Cache: long(MaxCacheNameLen), Source: long(MaxSourceLen), Seq: 8, Action: ActionSet,
			Key: long(MaxKeyLen), TraceParent: long(MaxTraceParentLen), Timestamp: 1 << 62},
	} {
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("AppendBinary(%+.40v): %v", m, err)
		}
		if len(b) > MaxMessageLen {
			t.Errorf("encoding is %d bytes, more than MaxMessageLen (%d)", len(b), MaxMessageLen)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("DecodeMessage: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %.60v gave %.60v", m, got)
		}
	}
}

func TestMaxMessageLen(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	m := Message{Cache: long(MaxCacheNameLen), Source: long(MaxSourceLen), Seq: 1, Action: ActionSet,
		Key: long(MaxKeyLen), TraceParent: long(MaxTraceParentLen), Value: []byte(long(MaxValueLen))}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxMessageLen {
		t.Fatalf("longest message is %d bytes, MaxMessageLen is %d", len(b), MaxMessageLen)
	}
}

func TestAppendBinaryRejects(t *testing.T) {
	valid := Message{Cache: "c", Source: "s", Seq: 1, Action: ActionSet, Key: "k"}
	for _, tc := range []struct {
		name   string
		change func(*Message)
		want   string // in the error
	}{
		{"empty cache", func(m *Message) { m.Cache = "" }, "Cache is empty"},
		{"long cache", func(m *Message) { m.Cache = strings.Repeat("c", MaxCacheNameLen+1) }, "Cache is 81 bytes"},
		{"empty source", func(m *Message) { m.Source = "" }, "Source is empty"},
		{"long source", func(m *Message) { m.Source = strings.Repeat("s", MaxSourceLen+1) }, "Source is 256 bytes"},
		{"long traceparent", func(m *Message) { m.TraceParent = strings.Repeat("t", MaxTraceParentLen+1) }, "TraceParent is 256 bytes"},
		{"long key", func(m *Message) { m.Key = strings.Repeat("k", MaxKeyLen+1) }, "Key is 65536 bytes"},
		{"seq 0", func(m *Message) { m.Seq = 0 }, "Seq is 0"},
		{"action 0", func(m *Message) { m.Action = 0 }, "Action action(0)"},
		{"action 9", func(m *Message) { m.Action = 9 }, "Action action(9)"},
		{"flags", func(m *Message) { m.Flags = 1 }, "Flags is 0x01"},
		{"key on clear", func(m *Message) { m.Action = ActionClearRemove }, "want none for action clear_remove"},
		{"value on remove", func(m *Message) { m.Action, m.Value = ActionRemove, []byte("v") }, "Value is 1 bytes on action remove, only set carries one"},
		{"empty value", func(m *Message) { m.Value = []byte{} }, "Value is empty but not nil"},
		{"long value", func(m *Message) { m.Value = make([]byte, MaxValueLen+1) }, "Value is 65537 bytes, more than MaxValueLen (65536)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid
			tc.change(&m)
			dst := []byte("keep")
			out, err := m.AppendBinary(dst)
			if err == nil {
				t.Fatalf("AppendBinary accepted %+v", m)
			}
			if !strings.HasPrefix(err.Error(), "backplane: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start with %q and contain %q", err, "backplane: ", tc.want)
			}
			if string(out) != "keep" {
				t.Errorf("AppendBinary changed dst to %q on error", out)
			}
		})
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	golden, _ := hex.DecodeString(goldenHex)
	with := func(off int, b byte) []byte {
		c := bytes.Clone(golden)
		c[off] = b
		return c
	}
	keyLenOff := len(golden) - len("user:42") - 2
	clear, _ := hex.DecodeString(goldenClearHex)
	clearWithKey := append(bytes.Clone(clear[:len(clear)-2]), 1, 0, 'k')
	for _, tc := range []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"nil", nil, "empty input at offset 0"},
		{"version 0", with(0, 0), "unsupported version 0 (want 1) at offset 0"},
		{"version 2", with(0, 2), "unsupported version 2 (want 1) at offset 0"},
		{"header only", golden[:headerLen], "truncated: 19 bytes"},
		{"flags", with(1, 1), "unsupported flags 0x01 at offset 1"},
		{"reserved flag", with(1, 0x80), "unsupported flags 0x80 at offset 1"},
		{"action 0", with(2, 0), "unknown action 0 at offset 2"},
		{"action 9", with(2, 9), "unknown action 9 at offset 2"},
		{"action 255", with(2, 255), "unknown action 255 at offset 2"},
		{"seq 0", append(append(bytes.Clone(golden[:3]), make([]byte, 8)...), golden[11:]...), "sequence number 0 at offset 3"},
		{"empty cache", with(headerLen, 0), "cache name length 0, want 1 to 80 at offset 19"},
		{"long cache", with(headerLen, 81), "cache name length 81, want 1 to 80 at offset 19"},
		{"cache overruns", with(headerLen, 80), "truncated cache name: 80 bytes announced, 77 remain at offset 20"},
		{"empty source", with(headerLen+6, 0), "source length 0, want 1 to 255 at offset 25"},
		{"source overruns", with(headerLen+6, 255), "truncated source: 255 bytes announced, 71 remain at offset 26"},
		{"traceparent overruns", with(headerLen+13, 200), "truncated traceparent: 200 bytes announced"},
		{"key overruns", with(keyLenOff, 8), "truncated key: 8 bytes announced, 7 remain"},
		{"key length cut", golden[:keyLenOff+1], "truncated before the key length at offset 88"},
		{"key cut", golden[:len(golden)-1], "truncated key: 7 bytes announced, 6 remain at offset 90"},
		{"trailing byte", append(bytes.Clone(golden), 0), "1 trailing bytes at offset 97"},
		{"trailing message", append(bytes.Clone(golden), golden...), "97 trailing bytes at offset 97"},
		{"key on clear", clearWithKey, "1-byte key on action clear_expire, which takes none at offset 33"},
		{"value flag, no value", with(1, FlagValue), "truncated before the value length at offset 97"},
		{"value on remove", func() []byte { c := withValue(golden, 3); c[2] = byte(ActionRemove); return c }(), "value flag on action remove, only set carries a value at offset 1"},
		{"value length 0", withValue(golden, 0), "value length 0, want 1 to 65536 at offset 97"},
		{"value too long", withLen(golden, MaxValueLen+1), "value length 65537, want 1 to 65536 at offset 97"},
		{"value overruns", withLen(golden, 4), "truncated value: 4 bytes announced, 0 remain at offset 101"},
		{"value trailing", append(withValue(golden, 2), 9), "1 trailing bytes at offset 103"},
		{"garbage", []byte("hello, world, this is not a message at all"), "unsupported version 104"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMessage(tc.data)
			if err == nil {
				t.Fatalf("DecodeMessage accepted it: %+v", m)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Errorf("DecodeMessage returned %+v with its error, want the zero Message", m)
			}
		})
	}
}

func TestDecodeMessageEveryTruncation(t *testing.T) {
	golden, _ := hex.DecodeString(goldenHex)
	for n := range len(golden) {
		if _, err := DecodeMessage(golden[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeMessage(first %d bytes) = %v, want ErrCorrupt", n, err)
		}
	}
}

func TestDecodeMessageDoesNotRetainInput(t *testing.T) {
	data, _ := hex.DecodeString(goldenHex)
	m, err := DecodeMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xee
	}
	if !reflect.DeepEqual(m, goldenMessage) {
		t.Fatalf("message changed with its input: %+v", m)
	}
}

func TestDecodeMessageAllocations(t *testing.T) {
	data, _ := hex.DecodeString(goldenHex)
	// One allocation per non-empty string field, nothing else.
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeMessage(data) }); n > 4 {
		t.Errorf("DecodeMessage makes %v allocations, want at most 4", n)
	}
}

func TestDecodeMessageAllocatesNoMoreThanTheInputHolds(t *testing.T) {
	golden, _ := hex.DecodeString(goldenHex)
	keyLenOff := len(golden) - len("user:42") - 2
	bad := bytes.Clone(golden)
	bad[keyLenOff], bad[keyLenOff+1] = 0xff, 0xff // announces a 65535-byte key
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := DecodeMessage(bad); err == nil {
			t.Fatal("DecodeMessage accepted a key longer than its input")
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 2048 {
		t.Errorf("DecodeMessage of a %d-byte input allocates %d bytes", len(bad), perRun)
	}
}

func TestActionString(t *testing.T) {
	want := map[Action]string{
		0: "action(0)", ActionSet: "set", ActionRemove: "remove", ActionExpire: "expire",
		ActionRemoveTag: "remove_tag", ActionExpireTag: "expire_tag",
		ActionClearRemove: "clear_remove", ActionClearExpire: "clear_expire", ActionProbe: "probe", 9: "action(9)", 255: "action(255)",
	}
	for a, s := range want {
		if got := a.String(); got != s {
			t.Errorf("Action(%d).String() = %q, want %q", a, got, s)
		}
		if valid := a >= 1 && a <= 8; a.Valid() != valid {
			t.Errorf("Action(%d).Valid() = %v, want %v", a, a.Valid(), valid)
		}
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	buf := make([]byte, 0, MaxMessageLen)
	for b.Loop() {
		_, _ = goldenMessage.AppendBinary(buf[:0])
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	data, _ := hex.DecodeString(goldenHex)
	for b.Loop() {
		_, _ = DecodeMessage(data)
	}
}

// withValue returns msg (an encoded set message without a value) with the
// value flag set and an n-byte value appended.
func withValue(msg []byte, n int) []byte {
	c := withLen(msg, uint32(n))
	return append(c, bytes.Repeat([]byte{'v'}, n)...)
}

// withLen returns msg with the value flag set and only a value length of n
// appended.
func withLen(msg []byte, n uint32) []byte {
	c := bytes.Clone(msg)
	c[1] |= FlagValue
	return binary.LittleEndian.AppendUint32(c, n)
}

func TestMessageWithValue(t *testing.T) {
	m := goldenMessage
	m.Value = []byte("abc")
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	golden, _ := hex.DecodeString(goldenHex)
	// The flags byte says so, and the value follows the key: u32 length,
	// then the bytes.
	want := append(withLen(golden, 3), "abc"...)
	if !bytes.Equal(b, want) {
		t.Fatalf("AppendBinary =\n% x\nwant\n% x", b, want)
	}
	back, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) || back.Flags != 0 {
		t.Fatalf("DecodeMessage = %+v, want %+v", back, m)
	}
	// The value is a copy: the input may be reused at once.
	b[len(b)-1] = 'X'
	if string(back.Value) != "abc" {
		t.Fatalf("decoded value changed with its input: %q", back.Value)
	}
	// Signed, it opens to the same message.
	k, _ := NewKeyring(bytes.Repeat([]byte{7}, 32))
	sealed, err := k.Seal(want)
	if err != nil {
		t.Fatal(err)
	}
	body, err := k.Open(nil, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := DecodeMessage(body); err != nil || string(back.Value) != "abc" {
		t.Fatalf("sealed and opened: %+v, %v", back, err)
	}
}
