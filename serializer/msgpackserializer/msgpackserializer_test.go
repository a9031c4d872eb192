package msgpackserializer_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/stratacache/strata/serializer/msgpackserializer"
)

type node struct {
	Name string
	Next *node
}

type withError struct {
	ID  int
	Err error
}

type withSkippedFunc struct {
	ID int
	F  func() `msgpack:"-"`
}

type withHiddenChan struct {
	ID int
	c  chan int // unexported: not encoded
}

// celsius encodes itself, so what it holds is its own business.
type celsius struct{ c chan int }

func (celsius) MarshalText() ([]byte, error) { return []byte("21"), nil }
func (*celsius) UnmarshalText([]byte) error  { return nil }

func TestMarshalErrorNamesTheType(t *testing.T) {
	loop := &node{Name: "a"}
	loop.Next = &node{Name: "b", Next: loop}
	for _, tt := range []struct {
		name  string
		v     any
		names []string
	}{
		{"chan", make(chan int), []string{"marshal chan int", "unsupported type chan int"}},
		{"nil func", (func(int) error)(nil), []string{"marshal func(int) error", "unsupported type func(int) error"}},
		{"complex", complex(1, 2), []string{"marshal complex128"}},
		{"func field", struct{ F func() }{}, []string{"marshal struct { F func() }", "func() at .F"}},
		{"chan in a map", map[string]any{"k": make(chan int)}, []string{"marshal map[string]interface {}", "unsupported type chan int"}},
		{"slice of funcs", []func(){nil}, []string{"func() at []"}},
		{"map key", map[complex64]int{}, []string{"complex64 at [key]"}},
		{"error field", withError{ID: 1}, []string{"marshal msgpackserializer_test.withError", "error at .Err", "interface with methods"}},
		{"io.Reader in a slice", []io.Reader{nil}, []string{"io.Reader at []"}},
		{"cycle", loop, []string{"marshal *msgpackserializer_test.node", "a cycle"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := msgpackserializer.New().Marshal(tt.v)
			if err == nil {
				t.Fatalf("Marshal = % x, want an error", b)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "msgpackserializer: ") {
				t.Errorf("error %q lacks the package prefix", msg)
			}
			for _, want := range tt.names {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
		})
	}
}

func TestUnsupportedTypeErrorUnwraps(t *testing.T) {
	_, err := msgpackserializer.New().Marshal(struct{ C []chan int }{})
	var ute *msgpackserializer.UnsupportedTypeError
	if !errors.As(err, &ute) {
		t.Fatalf("errors.As(%v, *UnsupportedTypeError) = false", err)
	}
	if ute.Type.String() != "chan int" || ute.Path != ".C[]" {
		t.Fatalf("UnsupportedTypeError = %+v, want chan int at .C[]", ute)
	}
}

func TestMarshalAcceptsWhatRoundTrips(t *testing.T) {
	s := msgpackserializer.New()
	chain := &node{Name: "a", Next: &node{Name: "b"}}
	for name, v := range map[string]any{
		"skipped func field":   withSkippedFunc{ID: 1, F: func() {}},
		"unexported chan":      withHiddenChan{ID: 1, c: make(chan int)},
		"self-encoding type":   celsius{c: make(chan int)},
		"acyclic chain":        chain,
		"shared pointers":      []*node{chain, chain},
		"any holding a struct": map[string]any{"n": node{Name: "x"}},
	} {
		if _, err := s.Marshal(v); err != nil {
			t.Errorf("Marshal of a %s: %v", name, err)
		}
	}
}

func TestDeepButAcyclicValue(t *testing.T) {
	var head *node
	for i := range 1000 {
		head = &node{Name: fmt.Sprint(i), Next: head}
	}
	s := msgpackserializer.New()
	b, err := s.Marshal(head)
	if err != nil {
		t.Fatal(err)
	}
	var got *node
	if err := s.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	n := 0
	for p := got; p != nil; p = p.Next {
		n++
	}
	if n != 1000 || got.Name != "999" {
		t.Fatalf("decoded a chain of %d starting at %q, want 1000 starting at 999", n, got.Name)
	}
}

func TestUnmarshalRejectsBadData(t *testing.T) {
	s := msgpackserializer.New()
	valid, err := s.Marshal(map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty data"},
		{"trailing data", append(bytes.Clone(valid), 0x01), "trailing data"},
		{"invalid code", []byte{0xc1}, "invalid code"},
		{"cut string", []byte{0xa5, 'a', 'b'}, "truncated"},
		{"huge array header", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, "truncated"},
		{"huge str32", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, "truncated"},
		{"cut length", []byte{0xdc, 0x01}, "truncated"},
		{"deep nesting", bytes.Repeat([]byte{0x91}, 1_000_000), "nested deeper"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			err := s.Unmarshal(tt.data, &v)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "msgpackserializer: unmarshal into *interface {}: ") {
				t.Fatalf("Unmarshal = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestNestingAtTheLimitDecodes(t *testing.T) {
	data := append(bytes.Repeat([]byte{0x91}, msgpackserializer.MaxDepth-1), 0x01)
	var v any
	if err := msgpackserializer.New().Unmarshal(data, &v); err != nil {
		t.Fatalf("Unmarshal of %d nested arrays: %v", msgpackserializer.MaxDepth-1, err)
	}
}

func TestTimeKeepsItsInstant(t *testing.T) {
	s := msgpackserializer.New()
	want := time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.FixedZone("X", 3600))
	b, err := s.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got time.Time
	if err := s.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("got %v, want the instant %v", got, want)
	}
}

func TestCompatibleWithPlainMsgpack(t *testing.T) {
	// Entries written by other MessagePack encoders (other services,
	// other languages) decode, and ours decode with theirs.
	type user struct {
		ID   int64
		Name string
	}
	b, err := msgpack.Marshal(user{ID: 1 << 40, Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	s := msgpackserializer.New()
	var got user
	if err := s.Unmarshal(b, &got); err != nil || got.ID != 1<<40 || got.Name != "Ada" {
		t.Fatalf("Unmarshal of msgpack.Marshal output = %+v, %v", got, err)
	}
	b, err = s.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back user
	if err := msgpack.Unmarshal(b, &back); err != nil || back != got {
		t.Fatalf("msgpack.Unmarshal of our output = %+v, %v", back, err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	s := msgpackserializer.New()
	for _, v := range []any{map[string]any{"a": []any{1, "x", nil}}, "text", 3.5, []byte{1, 2}, time.Unix(1, 2)} {
		b, _ := s.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := s.Unmarshal(data, &v); err != nil {
			return
		}
		// What decodes re-encodes.
		if _, err := s.Marshal(v); err != nil {
			t.Fatalf("Marshal of a decoded value: %v", err)
		}
	})
}
