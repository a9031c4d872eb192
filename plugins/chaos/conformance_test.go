package chaos_test

import (
	"context"
	"testing"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/plugins/chaos"
	"github.com/stratacache/strata/serializer/jsonserializer"
	"github.com/stratacache/strata/serializer/serializertest"
)

// With faults off (mode Never, or Maybe with zero rates), each wrapper
// passes its interface's conformance suite: it changes nothing else.

var quiet = []*chaos.Options{{Mode: chaos.Never}, {Mode: chaos.Maybe}}

type storeHarness struct{ opts *chaos.Options }

func (h storeHarness) MakeStore(context.Context, *testing.T) (l2.Store, error) {
	return chaos.NewStore(meml2.New(nil), h.opts)
}

func TestStoreConformance(t *testing.T) {
	for _, o := range quiet {
		t.Run(o.Mode.String(), func(t *testing.T) { l2test.Run(t, storeHarness{o}) })
	}
}

type busHarness struct {
	bus  *membackplane.Bus
	opts *chaos.Options
}

func (h busHarness) MakeBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
	return chaos.NewBackplane(h.bus.Connect(nil), h.opts)
}

func (busHarness) Disconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(*chaos.Backplane).Unwrap().(*membackplane.Backplane).Disconnect()
	return nil
}

func (busHarness) Reconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(*chaos.Backplane).Unwrap().(*membackplane.Backplane).Reconnect()
	return nil
}

func TestBackplaneConformance(t *testing.T) {
	for _, o := range quiet {
		t.Run(o.Mode.String(), func(t *testing.T) { backplanetest.Run(t, busHarness{membackplane.NewBus(), o}) })
	}
}

func TestSerializerConformance(t *testing.T) {
	for _, o := range quiet {
		t.Run(o.Mode.String(), func(t *testing.T) {
			s, err := chaos.NewSerializer(jsonserializer.New(), o)
			if err != nil {
				t.Fatal(err)
			}
			serializertest.Run(t, s)
		})
	}
}
