package core_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// typedCompileSrc uses typed handles rightly and wrongly; each line marked
// WRONG must be a compile error, and no other line.
const typedCompileSrc = `package p

import (
	"context"

	"github.com/stratacache/strata/core"
)

type User struct{ Name string }
type Order struct{ Total int }

func loadUser(ctx context.Context) (User, error)   { return User{}, nil }
func loadOrder(ctx context.Context) (Order, error) { return Order{}, nil }

func uses(ctx context.Context, c *core.Cache) {
	users := core.For[User](c)
	var u User
	var o Order

	u, _ = users.GetOrSet(ctx, "k", core.Loader(loadUser))
	u, _, _ = users.Get(ctx, "k")
	_ = users.Set(ctx, "k", u)
	_ = users.SetMany(ctx, map[string]User{"k": u})
	_, _ = users.GetOrSetMany(ctx, []string{"k"}, func(context.Context, []string) (map[string]User, error) { return nil, nil })

	_, _ = users.GetOrSet(ctx, "k", core.Loader(loadOrder)) // WRONG
	o, _ = users.GetOrSet(ctx, "k", core.Loader(loadUser))  // WRONG
	o, _, _ = users.Get(ctx, "k")                           // WRONG
	_ = users.Set(ctx, "k", o)                              // WRONG
	_ = users.SetMany(ctx, map[string]Order{"k": o})        // WRONG
	_, _ = users.GetOrSetMany(ctx, []string{"k"}, func(context.Context, []string) (map[string]Order, error) { return nil, nil }) // WRONG

	// The generic functions infer the type from the value: this compiles,
	// and only a read with the other type fails, at run time.
	_ = core.Set(ctx, c, "k", o)
	_ = u
	_ = o
}
`

// The point of typed handles: a value, factory or result of another type
// is a compile error. The snippet is type-checked against core's export
// data, which go list builds (or finds in the build cache).
func TestTypedHandleWrongTypesDoNotCompile(t *testing.T) {
	t.Parallel()
	args := []string{"list", "-export", "-f", "{{.ImportPath}}={{.Export}}"}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "context", "github.com/stratacache/strata/core")...).Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for line := range strings.Lines(string(out)) {
		path, file, _ := strings.Cut(strings.TrimSpace(line), "=")
		exports[path] = file
	}
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", typedCompileSrc, 0)
	if err != nil {
		t.Fatal(err)
	}
	var errLines []int
	conf := types.Config{
		Importer: importer.ForCompiler(fset, "gc", lookup),
		Error: func(err error) {
			te := err.(types.Error)
			errLines = append(errLines, fset.Position(te.Pos).Line)
			t.Log(te)
		},
	}
	conf.Check("p", fset, []*ast.File{f}, nil)
	var want []int
	for i, line := range strings.Split(typedCompileSrc, "\n") {
		if strings.HasSuffix(line, "// WRONG") {
			want = append(want, i+1)
		}
	}
	errLines = slices.Compact(errLines)
	if !slices.Equal(errLines, want) {
		t.Fatalf("compile errors on lines %v, want exactly on the lines marked WRONG: %v", errLines, want)
	}
}
