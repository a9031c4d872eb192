package core

import (
	"fmt"
	"testing"
)

func TestFloorsBoundedByL1(t *testing.T) {
	for _, tc := range []struct{ l1, want int }{{0, maxFloors}, {10, minFloors}, {5000, 5000}, {1 << 20, maxFloors}} {
		if got := floorsFor(tc.l1); got != tc.want {
			t.Errorf("floorsFor(%d) = %d, want %d", tc.l1, got, tc.want)
		}
	}
	fl := floors{max: floorsFor(5000)}
	for i := range 100_000 {
		fl.raise(fmt.Sprint("k", i), int64(i), floorExpire)
	}
	if n := len(fl.m); n > 5000 {
		t.Fatalf("%d floors after 100,000 keys with a bound of 5,000", n)
	}
	if fl.get("k99999").version != 99999 {
		t.Fatal("the latest key's floor was forgotten")
	}
}
