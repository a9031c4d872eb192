package sim

import (
	"fmt"
	"strconv"
	"time"
)

// Val is the value the simulated service caches: the source's version of a
// key, and which production made it (a factory run, or a Set), so that the
// checker can tell, for every value a read returns, how old it is.
type Val struct {
	// K is the key and V the source version the value was read (or
	// written) at.
	K string `json:"k"`
	V int    `json:"v"`
	// N and I are the node and incarnation that produced it, At when (the
	// factory's start or the Set, in nanoseconds since the run began).
	N   int   `json:"n"`
	I   int   `json:"i"`
	At  int64 `json:"at"`
	Set bool  `json:"set,omitempty"`
	// Tags are the tags of the entry it was produced for.
	Tags []string `json:"tags,omitempty"`
	// UB bounds its cache version from above (the producer's clock, Unix
	// ns): a change with a higher version is certainly newer for core too.
	UB int64 `json:"ub"`
}

func (v Val) String() string {
	how := "factory"
	if v.Set {
		how = "Set"
	}
	node := "n" + strconv.Itoa(v.N)
	if v.I > 1 {
		node += "#" + strconv.Itoa(v.I)
	}
	return fmt.Sprintf("%s@v%d(%s %s@%s)", v.K, v.V, node, how, fmtDur(timeDur(v.At)))
}

// same reports whether a and b are one production.
func (v Val) same(o Val) bool {
	return v.K == o.K && v.V == o.V && v.N == o.N && v.I == o.I && v.At == o.At && v.Set == o.Set
}

func timeDur(ns int64) time.Duration { return time.Duration(ns) }
