package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoClientLibrary enforces DESIGN.md's layering: core depends
// on no Redis, NATS, AMQP or OpenTelemetry package.
func TestCoreImportsNoClientLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/stratacache/strata/core").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/redis/", "github.com/nats-io/", "github.com/rabbitmq/", "go.opentelemetry.io/", "github.com/streadway/amqp"}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("core depends on %s", d)
			}
		}
	}
}
