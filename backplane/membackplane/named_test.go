package membackplane

import (
	"context"
	"testing"

	"github.com/stratacache/strata/backplane"
)

func namedBus(name string) *Bus {
	named.mu.Lock()
	defer named.mu.Unlock()
	return named.buses[name]
}

func TestNamedBusIsForgottenWhenItsLastNodeCloses(t *testing.T) {
	const name = "forget-me"
	a, err := backplane.Open(context.Background(), "mem://"+name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backplane.Open(context.Background(), "mem://"+name)
	if err != nil {
		t.Fatal(err)
	}
	bus := namedBus(name)
	if bus == nil || a.(*Backplane).bus != bus || b.(*Backplane).bus != bus {
		t.Fatal("nodes opened with one name are not on one named Bus")
	}
	_ = a.Close()
	if namedBus(name) != bus {
		t.Fatal("the Bus was forgotten while a node was still on it")
	}
	_ = b.Close()
	_ = b.Close()
	if namedBus(name) != nil {
		t.Fatal("the Bus is still known after its last node closed")
	}
	c, err := backplane.Open(context.Background(), "mem://"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := namedBus(name); got == nil || got == bus {
		t.Fatal("reopening the name did not make a new Bus")
	}
}
