package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"os"
	"strings"
	"testing"
)

func loadTrace(t *testing.T, path string) *apiTrace {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r apiResponse
	if err := json.Unmarshal(b, &r); err != nil || len(r.Data) != 1 {
		t.Fatalf("%s: %v (%d traces)", path, err, len(r.Data))
	}
	return &r.Data[0]
}

// TestWaterfallFromJaegerJSON draws the pictures of docs/img from Jaeger API
// responses recorded by `go run ./examples/jaeger -waterfall docs/img`.
func TestWaterfallFromJaegerJSON(t *testing.T) {
	w := loadTrace(t, "testdata/write.json")
	r := loadTrace(t, "testdata/receipt.json")
	set, ok := w.span("", "strata.set")
	if !ok {
		t.Fatal("no strata.set span in testdata/write.json")
	}
	recv, ok := r.span("", "strata.backplane.receive")
	if !ok || !recv.linksTo(w.TraceID, set.SpanID) {
		t.Fatal("the recorded receipt does not link to the recorded set span")
	}
	cn := &crossNode{write: w, receipts: []*apiTrace{r}, set: set, receive: recv}
	rows := waterfallRows(cn)
	var names []string
	for _, row := range rows {
		names = append(names, row.span.OperationName)
	}
	want := "PUT /users/42,strata.set,strata.l2.set,strata.backplane.publish,strata.backplane.receive"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if rows[3].depth != 2 || rows[4].trace != 1 {
		t.Errorf("publish depth %d, receive trace %d; want 2 and 1", rows[3].depth, rows[4].trace)
	}

	svg, pngData, err := renderWaterfall(cn, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Errorf("the SVG is not well-formed XML: %v", err)
	}
	for _, s := range []string{"strata.backplane.publish (producer)", "strata.backplane.receive (consumer)", `marker-end="url(#arrow)"`, w.TraceID, r.TraceID} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("the SVG lacks %q", s)
		}
	}
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != wfWidth || b.Dy() < 200 {
		t.Errorf("PNG %v", b)
	}
}
