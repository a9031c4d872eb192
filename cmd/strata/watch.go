package main

import (
	"context"
	"encoding/json"

	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratacache/strata/backplane"
)

const watchAbout = `Subscribes to the cache's backplane channel and prints each message,
decoded, one per line, until interrupted (SIGINT, SIGTERM) or, with -n,
after n messages: its action, key or tag, source node, sequence number,
the delay since the change (receive time minus the message's timestamp,
across the two clocks) and trace id. With signing keys every message is
verified; one that fails is printed with REJECTED and why (nodes with
these keys drop it). Probes (sent by idle nodes) are hidden unless -probes.`

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "watch"
	fs := newFlagSet(cmd, "-backplane URL -cache NAME [-json] [-probes] [-n N]", watchAbout, stderr)
	bpURL := fs.String("backplane", "", "backplane `URL` of the cache's nodes (redis://, nats://, amqp://, ...); required")
	name := fs.String("cache", "", "cache `NAME` (core.Options.Name); required")
	keysFile := fs.String("keys-file", "", "`FILE` of backplane signing keys to verify with (default: $"+SigningKeysEnv+")")
	asJSON := fs.Bool("json", false, "print one JSON object per message")
	probes := fs.Bool("probes", false, "also print probes")
	count := fs.Int("n", 0, "exit after `N` messages printed (0: until interrupted)")
	timeout := fs.Duration("timeout", defaultTimeout, "bound on opening the backplane and subscribing")
	if code := fs.parse(args, stdout); code >= 0 {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, cmd, "unexpected argument %q", fs.Arg(0))
	case *bpURL == "":
		return usageError(stderr, cmd, "-backplane is required")
	case *name == "":
		return usageError(stderr, cmd, "-cache is required")
	case len(*name) > backplane.MaxCacheNameLen:
		return usageError(stderr, cmd, "-cache %q is %d bytes, at most %d allowed", *name, len(*name), backplane.MaxCacheNameLen)
	case *count < 0:
		return usageError(stderr, cmd, "-n %d must not be negative", *count)
	case *timeout <= 0:
		return usageError(stderr, cmd, "-timeout %v must be positive", *timeout)
	}
	keys, err := signingKeys(*keysFile)
	if err != nil {
		return usageError(stderr, cmd, "%v", err)
	}
	var ring *backplane.Keyring
	if len(keys) > 0 {
		if ring, err = backplane.NewKeyring(keys...); err != nil {
			return usageError(stderr, cmd, "%v", err)
		}
	}

	openCtx, cancelOpen := context.WithTimeout(ctx, *timeout)
	defer cancelOpen()
	bp, err := backplane.Open(openCtx, *bpURL)
	if err != nil {
		return failure(stderr, cmd, fmt.Errorf("-backplane: %w", err))
	}
	defer bp.Close()

	w := &watcher{out: stdout, errw: stderr, ring: ring, cache: *name, json: *asJSON, probes: *probes, limit: *count, enough: make(chan struct{})}
	channel := backplane.ChannelName(*name)
	sub, err := bp.Subscribe(openCtx, channel, w.onMessage, w.onState)
	if err != nil {
		return failure(stderr, cmd, fmt.Errorf("subscribing to %s: %w", channel, err))
	}
	verify := "no signing keys: signatures not verified"
	if ring != nil {
		verify = "verifying signatures with 1 key"
		if len(keys) > 1 {
			verify = fmt.Sprintf("verifying signatures with %d keys", len(keys))
		}
	}
	fmt.Fprintf(stderr, "%s %s: watching %s (%s); interrupt to stop\n", programName, cmd, channel, verify)
	select {
	case <-ctx.Done():
	case <-w.enough:
	}
	_ = sub.Close()
	return exitOK
}

// watcher prints the messages of one subscription. The backplane never
// calls its methods concurrently; mu guards against a late call racing the
// end anyway.
type watcher struct {
	mu     sync.Mutex
	out    io.Writer
	errw   io.Writer
	ring   *backplane.Keyring
	cache  string
	json   bool
	probes bool
	limit  int
	n      int
	enough chan struct{}
	buf    []byte
}

// watchLine is one printed message, in -json form.
type watchLine struct {
	Received    time.Time `json:"received"`
	Action      string    `json:"action"`
	Key         string    `json:"key,omitempty"`
	Cache       string    `json:"cache,omitempty"`
	Source      string    `json:"source,omitempty"`
	Seq         uint64    `json:"seq,omitempty"`
	ChangedAt   time.Time `json:"changed_at"`
	DelayNS     int64     `json:"delay_ns"`
	TraceParent string    `json:"traceparent,omitempty"`
	TraceID     string    `json:"trace_id,omitempty"`
	Signature   string    `json:"signature"` // "valid", "unsigned", "unverified", "bad"
	Rejected    bool      `json:"rejected,omitempty"`
	Error       string    `json:"error,omitempty"`
}

func (w *watcher) onState(s backplane.State, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		fmt.Fprintf(w.errw, "%s watch: backplane %s: %v\n", programName, s, err)
		return
	}
	fmt.Fprintf(w.errw, "%s watch: backplane %s\n", programName, s)
}

func (w *watcher) onMessage(payload []byte) {
	received := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.limit > 0 && w.n >= w.limit {
		return
	}
	line := w.decode(payload, received)
	if line.Action == backplane.ActionProbe.String() && !w.probes && line.Error == "" {
		return
	}
	if w.json {
		b, _ := json.Marshal(line)
		w.out.Write(append(b, '\n'))
	} else {
		fmt.Fprintln(w.out, line.text())
	}
	w.n++
	if w.limit > 0 && w.n == w.limit {
		close(w.enough)
	}
}

// decode reads one payload: verified with the keyring when there is one,
// else with any signature trailer stripped unverified.
func (w *watcher) decode(payload []byte, received time.Time) watchLine {
	line := watchLine{Received: received}
	body := payload
	signed := len(payload) >= 2 && payload[1]&backplane.FlagSigned != 0
	switch {
	case w.ring != nil:
		var err error
		if w.buf, err = w.ring.Open(w.buf[:0], payload); err == nil {
			body, line.Signature = w.buf, "valid"
			break
		}
		line.Rejected, line.Error = true, err.Error()
		line.Signature = "bad"
		if !signed {
			line.Signature = "unsigned"
		}
		body = strip(payload)
	case signed:
		line.Signature = "unverified"
		body = strip(payload)
	default:
		line.Signature = "unsigned"
	}
	m, err := backplane.DecodeMessage(body)
	if err != nil {
		line.Action = "corrupt"
		if line.Error == "" {
			line.Error = err.Error()
		} else {
			line.Error += "; " + err.Error()
		}
		return line
	}
	line.Action, line.Key, line.Cache, line.Source, line.Seq = m.Action.String(), m.Key, m.Cache, m.Source, m.Seq
	line.ChangedAt = time.Unix(0, m.Timestamp).UTC()
	line.DelayNS = received.UnixNano() - m.Timestamp
	line.TraceParent = m.TraceParent
	if parts := strings.Split(m.TraceParent, "-"); len(parts) >= 2 {
		line.TraceID = parts[1]
	}
	if m.Cache != w.cache && line.Error == "" {
		line.Error = fmt.Sprintf("message names cache %q, not %q", m.Cache, w.cache)
	}
	return line
}

// strip returns payload without its signature trailer, flag cleared, so
// that a signed message can be shown without being verified.
func strip(payload []byte) []byte {
	if len(payload) < 2+backplane.SignatureLen || payload[1]&backplane.FlagSigned == 0 {
		return payload
	}
	b := append([]byte(nil), payload[:len(payload)-backplane.SignatureLen]...)
	b[1] &^= backplane.FlagSigned
	return b
}

// text is the line's human form: the receive time, REJECTED when the
// signature failed, the action, then key=value fields.
func (l watchLine) text() string {
	var b strings.Builder
	b.WriteString(l.Received.UTC().Format("15:04:05.000"))
	if l.Rejected {
		b.WriteString(" REJECTED")
	}
	fmt.Fprintf(&b, " %-12s", l.Action)
	if l.Action != "corrupt" {
		switch l.Action {
		case "remove_tag", "expire_tag":
			fmt.Fprintf(&b, " tag=%s", strconv.Quote(l.Key))
		case "clear_remove", "clear_expire", "probe":
		default:
			fmt.Fprintf(&b, " key=%s", strconv.Quote(l.Key))
		}
		fmt.Fprintf(&b, " source=%s seq=%d delay=%s", strconv.Quote(l.Source), l.Seq, time.Duration(l.DelayNS).Round(time.Microsecond))
		if l.TraceID != "" {
			fmt.Fprintf(&b, " trace=%s", l.TraceID)
		} else {
			b.WriteString(" trace=-")
		}
	}
	fmt.Fprintf(&b, " sig=%s", l.Signature)
	if l.Error != "" {
		fmt.Fprintf(&b, " error=%s", strconv.Quote(l.Error))
	}
	return b.String()
}
