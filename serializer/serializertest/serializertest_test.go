package serializertest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stratacache/strata/serializer/serializertest"
)

// broken is a JSON serializer with one deliberate bug.
type broken struct {
	bug string
	mu  sync.Mutex
	buf []byte
}

func (b *broken) Marshal(v any) ([]byte, error) {
	out, err := json.Marshal(v)
	switch {
	case err != nil && b.bug == "drops-unsupported":
		return []byte("null"), nil
	case err != nil:
		return nil, err
	case b.bug == "reuses-buffer":
		b.mu.Lock()
		defer b.mu.Unlock()
		b.buf = append(b.buf[:0], out...)
		return b.buf, nil
	case b.bug == "loses-precision":
		return []byte(strings.ReplaceAll(string(out), "0.1", "0.10000001")), nil
	}
	return out, nil
}

func (b *broken) Unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	switch {
	case err != nil && b.bug == "panics-on-corrupt":
		panic("cannot decode")
	case err != nil && b.bug == "accepts-corrupt":
		return nil
	}
	return err
}

// TestSuiteCatchesBrokenSerializers runs the suite, in a child process,
// against serializers with one bug each, and checks that the subtest meant
// to catch the bug fails (and that a panic is reported, not fatal).
func TestSuiteCatchesBrokenSerializers(t *testing.T) {
	for bug, subtest := range map[string]string{
		"drops-unsupported": "Unsupported",
		"reuses-buffer":     "MarshalReturnsFreshBytes",
		"loses-precision":   "RoundTrip",
		"panics-on-corrupt": "CorruptInput",
		"accepts-corrupt":   "TruncatedInput",
	} {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenSerializerHelper$/^"+subtest+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "SERIALIZERTEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a serializer with bug %q:\n%s", bug, out)
			}
			if want := "--- FAIL: TestBrokenSerializerHelper/" + subtest; !strings.Contains(string(out), want) {
				t.Fatalf("bug %q: no %q in the output:\n%s", bug, want, out)
			}
		})
	}
}

// TestBrokenSerializerHelper runs the suite against the serializer with the
// bug named by $SERIALIZERTEST_BUG; only TestSuiteCatchesBrokenSerializers
// runs it.
func TestBrokenSerializerHelper(t *testing.T) {
	bug := os.Getenv("SERIALIZERTEST_BUG")
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBrokenSerializers")
	}
	serializertest.Run(t, &broken{bug: bug})
}

func TestPlainJSONPasses(t *testing.T) {
	serializertest.Run(t, &broken{})
}
