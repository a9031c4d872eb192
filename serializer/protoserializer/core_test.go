package protoserializer_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/serializer/protoserializer"
	"github.com/stratacache/strata/serializer/protoserializer/internal/testpb"
)

// TestWithCore: a message cached by one node is read from L2 by another,
// through core's typed API (which decodes into a **testpb.Record).
func TestWithCore(t *testing.T) {
	ctx := context.Background()
	newNode := func(id string) *core.Cache {
		store, err := meml2.NewShared("protoserializer-"+t.Name(), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := core.New(core.Options{Name: "users", InstanceID: id, L2: store, Serializer: protoserializer.New()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); store.Close() })
		return c
	}
	a, b := newNode("a"), newNode("b")
	want := sampleRecord()
	if err := core.Set(ctx, a, "user:42", want, core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := core.GetOrSet(ctx, b, "user:42", func(context.Context, *core.FactoryContext[*testpb.Record]) (*testpb.Record, error) {
		t.Error("the factory ran: the value did not come from L2")
		return nil, nil
	})
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("node b got %v, %v; want %v from L2", got, err, want)
	}
	if got == want {
		t.Fatal("node b returned node a's message itself, not one decoded from L2")
	}
}
