package backplane

import (
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestWireFormatDocShowsGolden keeps docs/wire-format.md in step with the
// code: the hex blocks of its "Backplane message" section must be the exact
// encodings of the golden messages, and the limits it states must be the
// exported ones.
func TestWireFormatDocShowsGolden(t *testing.T) {
	doc, err := os.ReadFile("../docs/wire-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Backplane message\n")
	if !ok {
		t.Fatal(`docs/wire-format.md has no "## Backplane message" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for block, want := range map[string]string{
		"backplane message example": goldenHex,
		"backplane clear example":   goldenClearHex,
	} {
		m := regexp.MustCompile("(?s)<!-- golden: " + block + " -->\\s*```text\n(.*?)```").FindStringSubmatch(section)
		if m == nil {
			t.Errorf("the backplane section has no hex block after <!-- golden: %s -->", block)
			continue
		}
		got, err := hex.DecodeString(strings.Join(strings.Fields(m[1]), ""))
		if err != nil {
			t.Errorf("%s: %v", block, err)
			continue
		}
		if w, _ := hex.DecodeString(want); !bytes.Equal(got, w) {
			t.Errorf("docs/wire-format.md shows the %s as\n% x\nbut it encodes as\n% x", block, got, w)
		}
	}
	for _, fact := range []string{
		"`MaxCacheNameLen` = 80", "`MaxSourceLen` = 255", "`MaxTraceParentLen` = 255", "`MaxKeyLen` = 65535",
		"to 131,689 (`backplane.MaxMessageLen`)", "`MaxValueLen` = 65536", "from 26 (the shortest",
		"-fuzz FuzzDecodeMessage -fuzztime 60s ./backplane",
	} {
		if !strings.Contains(section, fact) {
			t.Errorf("the backplane section no longer says %q", fact)
		}
	}
	if MaxCacheNameLen != 80 || MaxSourceLen != 255 || MaxTraceParentLen != 255 || MaxKeyLen != 65535 ||
		MaxValueLen != 65536 || MaxMessageLen != 131689 || minMessageLen != 26 {
		t.Error("a limit changed: update docs/wire-format.md and this test")
	}
}
