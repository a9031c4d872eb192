package stats_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/plugins/stats"
)

type benchUser struct {
	ID   int
	Name string
}

func loadBenchUser(context.Context, *core.FactoryContext[benchUser]) (benchUser, error) {
	return benchUser{ID: 42, Name: "Ada"}, nil
}

// BenchmarkL1Hit: a GetOrSet L1 hit without observers and with the stats
// plugin, in the same run, on one goroutine and on all of them.
func BenchmarkL1Hit(b *testing.B) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		plugins func() []core.Plugin
	}{
		{"uninstrumented", func() []core.Plugin { return nil }},
		{"stats-plugin", func() []core.Plugin { return []core.Plugin{stats.New()} }},
	} {
		setup := func(b *testing.B) *core.Cache {
			c, err := core.New(core.Options{Name: "bench", Plugins: tt.plugins()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			if _, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			return c
		}
		b.Run(tt.name+"/serial", func(b *testing.B) {
			c := setup(b)
			for b.Loop() {
				v, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser, core.WithDuration(time.Hour))
				if err != nil || v.ID != 42 {
					b.Fatal(v, err)
				}
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			c := setup(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					v, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser, core.WithDuration(time.Hour))
					if err != nil || v.ID != 42 {
						b.Fatal(v, err)
					}
				}
			})
		})
	}
}
