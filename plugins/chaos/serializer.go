package chaos

import "github.com/stratacache/strata/serializer"

// Serializer is a serializer.Serializer with faults injected by its
// Injector (whose methods are the Serializer's). Delays are plain sleeps:
// a serializer has no context.
type Serializer struct {
	*Injector
	inner serializer.Serializer
}

var _ serializer.Serializer = (*Serializer)(nil)

// NewSerializer wraps inner: Marshal and Unmarshal are delayed and failed
// as the Injector decides. Invalid options are an error naming the field.
func NewSerializer(inner serializer.Serializer, opts *Options) (*Serializer, error) {
	inj, err := newInjector("NewSerializer", opts)
	if err != nil {
		return nil, err
	}
	return &Serializer{Injector: inj, inner: inner}, nil
}

// Marshal encodes v with the wrapped serializer unless a fault says
// otherwise.
func (s *Serializer) Marshal(v any) ([]byte, error) {
	if err := s.beforeNoContext("serializer Marshal"); err != nil {
		return nil, err
	}
	return s.inner.Marshal(v)
}

// Unmarshal decodes data with the wrapped serializer unless a fault says
// otherwise.
func (s *Serializer) Unmarshal(data []byte, v any) error {
	if err := s.beforeNoContext("serializer Unmarshal"); err != nil {
		return err
	}
	return s.inner.Unmarshal(data, v)
}

// Unwrap returns the wrapped serializer.
func (s *Serializer) Unwrap() serializer.Serializer { return s.inner }
