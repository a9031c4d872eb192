package stats_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/plugins/stats"
)

func ExampleNew() {
	st := stats.New()
	c, err := core.New(core.Options{Name: "users", Plugins: []core.Plugin{st}})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	ctx := context.Background()
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { return "Ada", nil }
	for range 4 {
		core.GetOrSet(ctx, c, "user:42", load)
	}
	s := st.Snapshot()
	fmt.Println(s.Cache, s.Status, s.Hits, s.Misses, s.HitRatio)

	// Serve it on a health endpoint: http.Handle("/healthz/cache", st).
	rec := httptest.NewRecorder()
	st.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz/cache", nil))
	body, _ := io.ReadAll(rec.Body)
	fmt.Println(rec.Code, strings.Contains(string(body), `"hits": 3`))
	// Output:
	// users ok 3 1 0.75
	// 200 true
}
