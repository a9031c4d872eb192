package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const docWithMarkers = "# Benchmarks\n\nhand-written, kept\n\n" + beginMarker + "\nold generated text\n" + endMarker + "\n\n## after, kept\n"

func TestReplaceSectionKeepsTheRestAndIsIdempotent(t *testing.T) {
	once, err := replaceSection(docWithMarkers, "new section\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nhand-written, kept\n\n" + beginMarker + "\nnew section\n" + endMarker + "\n\n## after, kept\n"
	if once != want {
		t.Errorf("got\n%q\nwant\n%q", once, want)
	}
	twice, err := replaceSection(once, "new section\n")
	if err != nil {
		t.Fatal(err)
	}
	if twice != once {
		t.Errorf("not idempotent:\n%q\n%q", once, twice)
	}
	// Empty markers, as committed before the first run.
	empty := beginMarker + "\n" + endMarker + "\n"
	if got, err := replaceSection(empty, "x"); err != nil || got != beginMarker+"\nx\n"+endMarker+"\n" {
		t.Errorf("empty section: %q, %v", got, err)
	}
}

func TestReplaceSectionRejectsBadMarkers(t *testing.T) {
	for name, doc := range map[string]string{
		"none":     "# Benchmarks\n",
		"no end":   beginMarker + "\n",
		"no begin": endMarker + "\n",
		"reversed": endMarker + "\n" + beginMarker + "\n",
		"twice":    docWithMarkers + docWithMarkers,
	} {
		if _, err := replaceSection(doc, "x"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// fakeResults is a run's results with every table and chart filled.
func fakeResults() *results {
	us := func(vs ...int) []time.Duration {
		d := make([]time.Duration, len(vs))
		for i, v := range vs {
			d[i] = time.Duration(v) * time.Microsecond
		}
		return d
	}
	return &results{
		Date: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), CPU: "Test CPU", Cores: 2, GoVersion: "go1.26.8", Commit: "abc1234",
		LoadStart: "0.5 0.4 0.3", LoadEnd: "1.0 0.5 0.3", Command: "go run ./examples/bench -quick", Quick: true,
		Count: 1, BenchTime: 100 * time.Millisecond, Duration: time.Minute, Procs: []int{1, 2},
		Hit: []hitResult{
			{Name: "otter v2 (raw, reference)", API: "GetIfPresent", Reference: true, NsPerOp: []float64{20, 10}, Allocs: []int64{0, 0}, Bytes: []int64{0, 0}},
			{Name: "strata", API: "core.GetOrSet", NsPerOp: []float64{30, 15}, Allocs: []int64{0, 0}, Bytes: []int64{0, 0}},
		},
		ZipfS: []float64{1.01, 1.2}, Capacities: []int{1000}, Keys: 100_000, Requests: 1_000_000,
		Ratios: []ratioResult{{Name: "strata L1", Capacity: "entries", Ratio: [][]float64{{0.4, 0.6}}},
			{Name: "ristretto", Capacity: "cost", AsyncSet: true, Ratio: [][]float64{{0.3, 0.5}}}},
		Trips: 4,
		Latency: []latencyResult{{Transport: "redis", Strata: us(100, 120, 150, 400), Raw: us(50, 60, 70, 200)},
			{Transport: "nats", Strata: us(130, 140, 150, 160), Raw: us(90, 100, 110, 120)}},
		Update: []updateResult{{Transport: "redis", Invalidate: us(200, 300, 400, 900), Values: us(100, 150, 200, 300), Raw: us(200, 250, 300, 600)},
			{Transport: "amqp", Invalidate: us(400, 500, 600, 700), Raw: us(300, 400, 500, 700)}},
	}
}

func TestRenderWritesTablesAndCharts(t *testing.T) {
	section, charts := render(fakeResults(), "img")
	for _, s := range []string{
		"Test CPU", "go1.26.8", "go run ./examples/bench -quick", "0.5 0.4 0.3", "-quick",
		"| strata | `core.GetOrSet` | 30.0 | 33.3M | 1.50× |", // 1 core: 30 ns, 1.5× otter's 20
		"| strata L1 | 0.4000 | 0.6000 |",
		"| Redis pub/sub | strata | 120 µs |", "2.00×", // p50 120 vs 60 µs
		"![", "](img/bench-l1-hit.png)", "](img/bench-hitratio-1000.png)", "](img/bench-latency-cdf.png)",
		"ristretto applies sets asynchronously",
		// Update served: p50 of the 4 trips is the 2nd (nearest rank).
		"| Redis pub/sub | strata, invalidate + L2 read | 300 µs | 900 µs | 900 µs | 900 µs | 1.20× | 1.50× |",
		"| Redis pub/sub | strata, value on backplane | 150 µs | 300 µs | 300 µs | 300 µs | 0.60× | 0.50× |",
		"| Redis pub/sub | raw clients (floor) | 250 µs | 600 µs | 600 µs | 600 µs | 1 | 1 |",
		"| RabbitMQ (fanout) | strata, invalidate + L2 read | 500 µs |",
		"](img/bench-update-redis.png)", "](img/bench-update-amqp.png)",
	} {
		if !strings.Contains(section, s) {
			t.Errorf("the section lacks %q:\n%s", s, section)
		}
	}
	if strings.Contains(section, "RabbitMQ (fanout) | strata, value on backplane") {
		t.Errorf("a value-on-backplane row for a transport without its trips:\n%s", section)
	}
	if len(charts) != 5 {
		t.Fatalf("%d charts, want 5", len(charts))
	}
	dir := t.TempDir()
	for _, c := range charts {
		path := filepath.Join(dir, c.File)
		if err := writePNG(path, c.Chart); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", c.File, err)
		}
	}
}

// TestReportFileRoundTrip: writing the report into a file twice gives the
// same file, with the hand-written text around the markers untouched.
func TestReportFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(path, []byte(docWithMarkers), 0o644); err != nil {
		t.Fatal(err)
	}
	section, _ := render(fakeResults(), "img")
	for range 2 {
		if err := replaceFileSection(path, section); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, "# Benchmarks\n\nhand-written, kept\n\n"+beginMarker+"\n") || !strings.HasSuffix(got, endMarker+"\n\n## after, kept\n") {
		t.Errorf("the text around the markers changed:\n%s", got)
	}
	if strings.Count(got, "### L1 hit") != 1 {
		t.Errorf("the section is not there exactly once:\n%s", got)
	}
	if _, err := os.Stat(path + ".bench-tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	// A file without markers is left alone.
	bad := filepath.Join(t.TempDir(), "other.md")
	if err := os.WriteFile(bad, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceFileSection(bad, section); err == nil {
		t.Error("no error for a file without markers")
	}
	if b, _ := os.ReadFile(bad); string(b) != "no markers\n" {
		t.Errorf("the file without markers changed: %q", b)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("median of nothing = %v", m)
	}
}
