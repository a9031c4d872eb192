package backplanetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/membackplane"
)

// memHarness runs the suite on the reference implementation.
type memHarness struct{ bus *membackplane.Bus }

func (h memHarness) MakeBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
	return h.bus.Connect(nil), nil
}

func (memHarness) Disconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(*membackplane.Backplane).Disconnect()
	return nil
}

func (memHarness) Reconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(*membackplane.Backplane).Reconnect()
	return nil
}

// MakeUnreachableBackplane returns a node that is disconnected from the
// start, the closest the reference has to a server that is not there.
func (h memHarness) MakeUnreachableBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
	n := h.bus.Connect(nil)
	n.Disconnect()
	return n, nil
}

func TestRunOnReference(t *testing.T) {
	backplanetest.Run(t, memHarness{membackplane.NewBus()})
}

// flawed wraps a reference node with one deliberate contract violation, to
// show that the suite notices it.
type flawed struct {
	*membackplane.Backplane
	flaw string
}

func (f *flawed) Publish(ctx context.Context, channel string, payload []byte) error {
	switch f.flaw {
	case "ignores-ctx":
		ctx = context.Background()
	case "duplicates":
		_ = f.Backplane.Publish(ctx, channel, payload)
	case "retains-payload":
		go func() {
			time.Sleep(time.Millisecond)
			_ = f.Backplane.Publish(context.Background(), channel, payload)
		}()
		return nil
	case "hides-closed":
		err := f.Backplane.Publish(ctx, channel, payload)
		if errors.Is(err, backplane.ErrClosed) {
			err = errors.New("flawed: gone")
		}
		return err
	}
	return f.Backplane.Publish(ctx, channel, payload)
}

func (f *flawed) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	if f.flaw == "abandons-cancelled" {
		// Fails when ctx ends during the server's confirmation (a
		// millisecond here), but leaves the subscription running.
		sub, err := f.Backplane.Subscribe(context.Background(), channel, onMessage, onState)
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Millisecond)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return sub, nil
	}
	sub, err := f.Backplane.Subscribe(ctx, channel, onMessage, onState)
	if err != nil {
		return nil, err
	}
	switch f.flaw {
	case "cross-talk":
		_, _ = f.Backplane.Subscribe(ctx, channel+"-2", onMessage, func(backplane.State, error) {})
	case "close-keeps-delivering":
		return noClose{}, nil
	}
	return sub, nil
}

type noClose struct{}

func (noClose) Close() error { return nil }

type flawedHarness struct {
	bus  *membackplane.Bus
	flaw string
}

func (h flawedHarness) MakeBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
	return &flawed{Backplane: h.bus.Connect(nil), flaw: h.flaw}, nil
}

const flawEnv = "BACKPLANETEST_FLAW"

// TestFlawedHelper runs the suite on a flawed backplane when
// TestSuiteCatchesFlaws asks it to, in a child process.
func TestFlawedHelper(t *testing.T) {
	flaw := os.Getenv(flawEnv)
	if flaw == "" {
		t.Skip("run by TestSuiteCatchesFlaws")
	}
	// The in-memory reference answers in microseconds: 5 s is still
	// generous for the faithful run on a loaded machine, and a flaw's
	// failing wait (a goroutine left running, a payload that never comes)
	// ends after it rather than after the suite's 20 s.
	backplanetest.ShortenWaits(5 * time.Second)
	backplanetest.Run(t, flawedHarness{membackplane.NewBus(), flaw})
}

// TestSuiteCatchesFlaws runs the suite on a backplane with each flaw, one
// child process per flaw, all at once (they mostly wait: t.Parallel would
// run only GOMAXPROCS of them at a time), and checks that the suite fails
// the subtest meant to catch it, and passes the faithful wrapper.
func TestSuiteCatchesFlaws(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process per flaw")
	}
	type run struct {
		out  []byte
		err  error
		done chan struct{}
	}
	flaws := map[string]string{
		"none":                   "",
		"ignores-ctx":            "ContextDone",
		"duplicates":             "DeliversToOtherNodes",
		"retains-payload":        "PayloadReusedByPublisher",
		"hides-closed":           "UseAfterClose",
		"cross-talk":             "ChannelIsolation",
		"close-keeps-delivering": "SubscriptionClose",
		"abandons-cancelled":     "CancelledSubscribeLeavesNothing",
	}
	runs := map[string]*run{}
	for flaw := range flaws {
		r := &run{done: make(chan struct{})}
		runs[flaw] = r
		go func() {
			defer close(r.done)
			cmd := exec.Command(os.Args[0], "-test.run=^TestFlawedHelper$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), flawEnv+"="+flaw)
			r.out, r.err = cmd.CombinedOutput()
		}()
	}
	for flaw, subtest := range flaws {
		t.Run(flaw, func(t *testing.T) {
			r := runs[flaw]
			<-r.done
			out, err := r.out, r.err
			if subtest == "" {
				if err != nil {
					t.Fatalf("the suite failed on a faithful wrapper: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passed a backplane that %s", flaw)
			}
			if want := "--- FAIL: TestFlawedHelper/" + subtest + " "; !strings.Contains(string(out), want) {
				t.Fatalf("the suite did not fail %s on a backplane that %s:\n%s", subtest, flaw, out)
			}
		})
	}
}
