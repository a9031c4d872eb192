package doccheck

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// root is the repository root, relative to this package's directory.
const root = "../.."

// block is one fenced ```go block of a document.
type block struct {
	file string // relative to the repository root, such as docs/l2.md
	line int    // line of the block's first line of code (1-based)
	info string // the info string: "go", "go fragment"
	code string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

func (b block) fragment() bool { return slices.Contains(strings.Fields(b.info)[1:], "fragment") }

// documents are README.md and every docs/*.md.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

var fence = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*(.*)$")

// extract returns the ```go blocks of the document at path (relative to
// the repository root).
func extract(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []block
		cur    *block
		open   string // the opening fence, while inside a block of any language
		lines  []string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := fence.FindStringSubmatch(line)
		switch {
		case open == "" && m != nil:
			open = m[2]
			if lang := strings.Fields(m[3]); len(lang) > 0 && lang[0] == "go" {
				cur = &block{file: path, line: n + 1, info: m[3]}
				lines = nil
			}
		case open != "" && m != nil && strings.HasPrefix(m[2], open) && m[3] == "":
			if cur != nil {
				cur.code = strings.Join(lines, "\n") + "\n"
				blocks = append(blocks, *cur)
			}
			open, cur = "", nil
		case cur != nil:
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s: the block is not closed", cur)
	}
	return blocks
}

// knownImports maps the package names the docs use without importing them
// to their import paths.
var knownImports = map[string]string{
	// The standard library.
	"bytes": "bytes", "cmp": "cmp", "context": "context", "errors": "errors", "fmt": "fmt", "http": "net/http",
	"io": "io", "json": "encoding/json", "log": "log", "maps": "maps", "net": "net", "os": "os", "rand": "math/rand/v2",
	"signal": "os/signal", "slices": "slices", "slog": "log/slog", "sort": "sort", "sql": "database/sql",
	"strconv": "strconv", "strings": "strings", "sync": "sync", "atomic": "sync/atomic", "syscall": "syscall",
	"testing": "testing", "time": "time", "url": "net/url", "hex": "encoding/hex", "binary": "encoding/binary",
	"filepath": "path/filepath", "runtime": "runtime",
	// The clients and libraries the adapters use.
	"redis":       "github.com/redis/go-redis/v9",
	"nats":        "github.com/nats-io/nats.go",
	"jetstream":   "github.com/nats-io/nats.go/jetstream",
	"amqp":        "github.com/rabbitmq/amqp091-go",
	"otel":        "go.opentelemetry.io/otel",
	"attribute":   "go.opentelemetry.io/otel/attribute",
	"trace":       "go.opentelemetry.io/otel/trace",
	"sdktrace":    "go.opentelemetry.io/otel/sdk/trace",
	"sdkmetric":   "go.opentelemetry.io/otel/sdk/metric",
	"metric":      "go.opentelemetry.io/otel/metric",
	"propagation": "go.opentelemetry.io/otel/propagation",
}

// moduleImports adds the module's public packages (name → path) to
// knownImports.
func moduleImports(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command(goTool(), "list", "-f", "{{.Name}} {{.ImportPath}}", root+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string]string{}
	for k, v := range knownImports {
		m[k] = v
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, path, _ := strings.Cut(line, " ")
		if name == "main" || strings.Contains(path, "/internal/") || strings.Contains(path, "/examples/") {
			continue
		}
		if _, dup := m[name]; !dup {
			m[name] = path
		}
	}
	return m
}

type kind int

const (
	kindFile kind = iota
	kindDecls
	kindFragment
)

func (k kind) String() string {
	return [...]string{"a program or file", "declarations", "an unmarked fragment"}[k]
}

// classify says what b is: a file (it parses as one), declarations (they
// parse as a file once a package clause is added) or a fragment.
func classify(b block) kind {
	fset := token.NewFileSet()
	if _, err := parser.ParseFile(fset, "", b.code, parser.PackageClauseOnly); err == nil {
		return kindFile
	}
	if _, err := parser.ParseFile(fset, "", "package p\n"+b.code, parser.SkipObjectResolution); err == nil {
		return kindDecls
	}
	return kindFragment
}

// source returns the Go file that compiles b as k: line directives make the
// compiler report positions in the document.
func source(b block, k kind, imports map[string]string) (string, error) {
	directive := fmt.Sprintf("//line %s:%d\n", b.file, b.line)
	if k == kindFile {
		// A program is compiled as a library (package main renamed), which
		// type-checks it the same without linking a binary.
		return mainRenamed(directive + b.code), nil
	}
	body := b.code
	if k == kindFragment {
		body = "func _() {\n" + directive + b.code + "}\n"
		directive = ""
	}
	// The names the block uses but does not declare or import.
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+body, parser.AllErrors)
	if err != nil {
		return "", err
	}
	own := map[string]bool{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := filepath.Base(p)
		if strings.HasPrefix(name, "v") && len(strings.Trim(name, "v0123456789")) == 0 {
			name = filepath.Base(filepath.Dir(p)) // github.com/redis/go-redis/v9
		}
		name = strings.TrimPrefix(strings.TrimSuffix(name, ".go"), "go-")
		if im.Name != nil {
			name = im.Name.Name
		}
		own[name] = true
	}
	need := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Obj == nil && imports[id.Name] != "" && !own[id.Name] {
				need[id.Name] = true
			}
		}
		return true
	})
	pkg := "snippet"
	var src strings.Builder
	fmt.Fprintf(&src, "package %s\n\n", pkg)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range need {
			if !yield(n) {
				return
			}
		}
	}) {
		fmt.Fprintf(&src, "import %s %q\n", name, imports[name])
	}
	src.WriteString(directive)
	src.WriteString(body)
	return src.String(), nil
}

// mainRenamed renames the package clause "package main" of src to
// "package snippet".
func mainRenamed(src string) string {
	return packageMain.ReplaceAllString(src, "${1}package snippet")
}

var packageMain = regexp.MustCompile(`(?m)^([ \t]*)package main[ \t]*$`)

// TestDocSnippetsCompile compiles every ```go block of README.md and
// docs/*.md that is not marked as a fragment, and reports each one that
// does not compile with its file and line.
func TestDocSnippetsCompile(t *testing.T) {
	imports := moduleImports(t)
	gen, err := os.MkdirTemp("testdata", "gen-")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("DOCCHECK_KEEP") == "" {
		t.Cleanup(func() { os.RemoveAll(gen) })
	}

	type unit struct {
		b    block
		kind kind
		dir  string
	}
	var units []unit
	counts := map[string]int{}
	for _, doc := range documents(t) {
		for _, b := range extract(t, doc) {
			if b.fragment() {
				counts["marked fragments"]++
				continue
			}
			k := classify(b)
			counts[k.String()]++
			src, err := source(b, k, imports)
			if err != nil {
				t.Errorf("%s: %s that does not parse: %v", b, k, err)
				continue
			}
			dir := filepath.Join(gen, fmt.Sprintf("s%03d", len(units)))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "snippet.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			units = append(units, unit{b, k, dir})
		}
	}
	t.Logf("go blocks: %v", counts)
	if len(units) == 0 {
		t.Fatal("no ```go block found: is the repository root " + root + "?")
	}

	// No unit is a main package: go build writes nothing. With -race when
	// the test has it, so that the dependencies compiled for the tests are
	// reused instead of compiled again without it.
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	for _, u := range units {
		args = append(args, "./"+filepath.ToSlash(u.dir))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = "." // the line directives name files relative to the root
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	// go build prints "# <import path>" before each package's errors.
	sections := map[string]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(line, "# "); ok {
			cur = filepath.Base(p)
			continue
		}
		sections[cur] += line + "\n"
	}
	reported := false
	for _, u := range units {
		msg, ok := sections[filepath.Base(u.dir)]
		if !ok {
			continue
		}
		reported = true
		hint := ""
		if u.kind == kindFragment {
			hint = "\n(make it a program or declarations that compile, or mark it ```go fragment)"
		}
		t.Errorf("%s: %s that does not compile:\n%s%s", u.b, u.kind, bytes.TrimSpace([]byte(msg)), hint)
	}
	if !reported {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code string
		want kind
	}{
		{"package main\n\nfunc main() {}\n", kindFile},
		{"func f(ctx context.Context) error { return ctx.Err() }\n", kindDecls},
		{"import \"fmt\"\n\nvar x = fmt.Sprint(1)\n", kindDecls},
		{"x := 1\n_ = x\n", kindFragment},
		{"func open() { ... }\n", kindFragment},
	} {
		if got := classify(block{code: tc.code}); got != tc.want {
			t.Errorf("classify(%q) = %v, want %v", tc.code, got, tc.want)
		}
	}
}

// TestSourceAddsImports: a declaration block gets the imports it leaves
// out, and a line directive pointing at its document.
func TestSourceAddsImports(t *testing.T) {
	b := block{file: "docs/x.md", line: 7, code: "func f(ctx context.Context) error { return core.ErrClosed }\n"}
	src, err := source(b, kindDecls, map[string]string{"context": "context", "core": "github.com/stratacache/strata/core"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`import context "context"`, `import core "github.com/stratacache/strata/core"`, "//line docs/x.md:7\nfunc f"} {
		if !strings.Contains(src, want) {
			t.Errorf("source lacks %q:\n%s", want, src)
		}
	}
}

// TestMainRenamedKeepsLines: renaming package main keeps every line where
// it was, so that errors point at the document's lines.
func TestMainRenamedKeepsLines(t *testing.T) {
	in := "//line a.md:4\npackage main\n\nfunc main() {}\n"
	got := mainRenamed(in)
	if want := "//line a.md:4\npackage snippet\n\nfunc main() {}\n"; got != want {
		t.Errorf("mainRenamed(%q) = %q, want %q", in, got, want)
	}
}
