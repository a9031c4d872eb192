package msgpackserializer

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Marshal's checks. What can be judged from a type alone (a func field, an
// io.Reader field) is judged once per type and cached; values are walked
// only when their type holds an interface (whose dynamic values must be
// checked) or refers to itself (a value could be cyclic).

// typeInfo is what a type says about its values.
type typeInfo struct {
	// err: no value of the type can round-trip.
	err error
	// walk: a value of the type must be walked to know.
	walk bool
	// For a walk: the indexes of the struct fields to walk, and whether
	// the elements or keys of a container need it.
	fields            []int
	elemWalk, keyWalk bool
}

var typeInfos sync.Map // reflect.Type -> *typeInfo

var (
	customEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType       = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// errTooDeep is reported for a value nested deeper than MaxDepth, which is
// most often a cycle.
var errTooDeep = fmt.Errorf("nested deeper than %d levels: a cycle, or too deep a value", MaxDepth)

// check reports why v cannot round-trip, or nil.
func check(v any) error {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	info := infoOf(rv.Type())
	if info.err != nil {
		return info.err
	}
	if !info.walk {
		return nil
	}
	return walk(rv, 0)
}

func infoOf(t reflect.Type) *typeInfo {
	if i, ok := typeInfos.Load(t); ok {
		return i.(*typeInfo)
	}
	info := &typeInfo{err: staticError(t, "", map[reflect.Type]bool{}), walk: needsWalk(t)}
	if info.walk && info.err == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			info.elemWalk = needsWalk(t.Elem())
		case reflect.Map:
			info.keyWalk, info.elemWalk = needsWalk(t.Key()), needsWalk(t.Elem())
		case reflect.Struct:
			for _, f := range fields(t) {
				if needsWalk(f.Type) {
					info.fields = append(info.fields, f.Index[0])
				}
			}
		}
	}
	i, _ := typeInfos.LoadOrStore(t, info)
	return i.(*typeInfo)
}

// needsWalk reports whether values of t must be walked: t is or holds an
// interface, or a type that holds itself (a value could be cyclic).
func needsWalk(t reflect.Type) bool {
	selfHolding := func(u reflect.Type) bool {
		return u.Kind() == reflect.Interface || reaches(u, func(x reflect.Type) bool { return x == u })
	}
	return selfHolding(t) || reaches(t, selfHolding)
}

// staticError reports a type that t holds (found at path inside the value
// given to Marshal; "" for the value itself) and no value can round-trip.
func staticError(t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] || encodesItself(t) {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return &UnsupportedTypeError{Type: t, Path: path, Why: "MessagePack cannot encode it"}
	case reflect.Interface:
		if t.NumMethod() > 0 {
			return &UnsupportedTypeError{Type: t, Path: path, Why: "an interface with methods cannot be decoded (nothing says which concrete type to decode into)"}
		}
	case reflect.Pointer:
		return staticError(t.Elem(), path, seen)
	case reflect.Slice, reflect.Array:
		return staticError(t.Elem(), path+"[]", seen)
	case reflect.Map:
		if err := staticError(t.Key(), path+"[key]", seen); err != nil {
			return err
		}
		return staticError(t.Elem(), path+"[]", seen)
	case reflect.Struct:
		for _, f := range fields(t) {
			if err := staticError(f.Type, path+"."+f.Name, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// reaches reports whether a value of t holds a value of a type for which
// match is true (not counting t itself).
func reaches(t reflect.Type, match func(reflect.Type) bool) bool {
	seen := map[reflect.Type]bool{}
	var visit func(u reflect.Type) bool
	visit = func(u reflect.Type) bool {
		for _, c := range children(u) {
			if match(c) {
				return true
			}
			if !seen[c] {
				seen[c] = true
				if visit(c) {
					return true
				}
			}
		}
		return false
	}
	return visit(t)
}

// children returns the types a value of t holds that the encoder visits.
func children(t reflect.Type) []reflect.Type {
	if encodesItself(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return []reflect.Type{t.Elem()}
	case reflect.Map:
		return []reflect.Type{t.Key(), t.Elem()}
	case reflect.Struct:
		var out []reflect.Type
		for _, f := range fields(t) {
			out = append(out, f.Type)
		}
		return out
	}
	return nil
}

// fields returns the fields of struct type t that the encoder visits.
func fields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if (f.IsExported() || f.Anonymous) && !skipped(f) {
			out = append(out, f)
		}
	}
	return out
}

// encodesItself reports whether the encoder hands values of t to one of
// their own methods instead of looking inside them.
func encodesItself(t reflect.Type) bool {
	for _, m := range []reflect.Type{customEncoderType, marshalerType, binaryMarshalerType, textMarshalerType} {
		if t.Implements(m) || t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(m) {
			return t.Kind() != reflect.Interface
		}
	}
	return false
}

// skipped reports whether the encoder leaves field f out.
func skipped(f reflect.StructField) bool {
	name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
	return name == "-"
}

// UnsupportedTypeError is the error (wrapped) Marshal returns for a value
// holding a type that cannot round-trip.
type UnsupportedTypeError struct {
	// Type is the offending type.
	Type reflect.Type
	// Path says where it is in the value: ".Field", "[]" for an element,
	// "[key]" for a map key; empty for the value itself.
	Path string
	// Why says what is wrong with it.
	Why string
}

func (e *UnsupportedTypeError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("unsupported type %s: %s", e.Type, e.Why)
	}
	return fmt.Sprintf("unsupported type %s at %s: %s", e.Type, e.Path, e.Why)
}

// walk checks a value whose type needs it: the dynamic values of its
// interfaces, and its depth.
func walk(v reflect.Value, depth int) error {
	if depth > MaxDepth {
		return errTooDeep
	}
	info := infoOf(v.Type())
	if info.err != nil {
		return info.err
	}
	if !info.walk {
		return nil
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walk(v.Elem(), depth+1)
	case reflect.Pointer:
		if v.IsNil() || !info.elemWalk {
			return nil
		}
		return walk(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if !info.elemWalk {
			return nil
		}
		for i := range v.Len() {
			if err := walk(v.Index(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		if !info.keyWalk && !info.elemWalk {
			return nil
		}
		for it := v.MapRange(); it.Next(); {
			if info.keyWalk {
				if err := walk(it.Key(), depth+1); err != nil {
					return err
				}
			}
			if info.elemWalk {
				if err := walk(it.Value(), depth+1); err != nil {
					return err
				}
			}
		}
	case reflect.Struct:
		for _, i := range info.fields {
			if err := walk(v.Field(i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
