package jsonserializer_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stratacache/strata/serializer/jsonserializer"
	"github.com/stratacache/strata/serializer/serializertest"
)

func TestConformance(t *testing.T) {
	serializertest.Run(t, jsonserializer.New())
}

func TestMarshalErrorNamesTheType(t *testing.T) {
	type order struct {
		ID       int
		Callback func()
	}
	for _, tt := range []struct {
		name  string
		v     any
		names []string
	}{
		{"chan", make(chan int), []string{"marshal chan int", "unsupported type: chan int"}},
		{"func", func(int) error { return nil }, []string{"marshal func(int) error"}},
		{"complex128", complex(1, 2), []string{"marshal complex128", "unsupported type: complex128"}},
		{"complex64 in a slice", []complex64{1}, []string{"marshal []complex64", "complex64"}},
		{"func field", order{ID: 1}, []string{"marshal jsonserializer_test.order", "unsupported type: func()"}},
		{"NaN", math.NaN(), []string{"marshal float64", "NaN"}},
		{"infinity", map[string]float64{"x": math.Inf(1)}, []string{"marshal map[string]float64", "+Inf"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := jsonserializer.New().Marshal(tt.v)
			if err == nil {
				t.Fatalf("Marshal = %q, want an error", b)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "jsonserializer: ") {
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

func TestMarshalErrorsUnwrap(t *testing.T) {
	_, err := jsonserializer.New().Marshal(make(chan int))
	var ute *json.UnsupportedTypeError
	if !errors.As(err, &ute) {
		t.Fatalf("errors.As(%v, *json.UnsupportedTypeError) = false", err)
	}
}

func TestMarshalDoesNotEscapeHTML(t *testing.T) {
	b, err := jsonserializer.New().Marshal("<a&b>")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `"<a&b>"` {
		t.Fatalf("Marshal = %s, want %s", b, `"<a&b>"`)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	s := jsonserializer.New()
	var v struct{ A int }
	for _, data := range []string{``, `{`, `{"A":`, `{"A":1}x`, `{"A":"one"}`, `[1]`, "\xff"} {
		err := s.Unmarshal([]byte(data), &v)
		if err == nil || !strings.HasPrefix(err.Error(), "jsonserializer: unmarshal into *struct { A int }: ") {
			t.Errorf("Unmarshal(%q) = %v, want a jsonserializer error naming the target", data, err)
		}
	}
}
