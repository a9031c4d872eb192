package pgcdc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stratacache/strata/core"
)

// Defaults of Options.
const (
	DefaultPublication        = "strata"
	DefaultSlot               = "strata"
	DefaultRetryInterval      = time.Second
	DefaultMaxRetryInterval   = 10 * time.Second
	DefaultStatusInterval     = time.Second
	DefaultApplyTimeout       = 5 * time.Second
	DefaultMaxTransactionKeys = 100_000
)

// Options adjust a Consumer (and Setup). The zero value is valid.
type Options struct {
	// Publication and Slot name the publication and the logical
	// replication slot (DefaultPublication, DefaultSlot). Slot names take
	// lower-case letters, digits and _ only.
	Publication, Slot string
	// NoStandby makes Run return an error wrapping ErrSlotActive when
	// another consumer holds the slot, instead of standing by.
	NoStandby bool
	// RetryInterval is how often a standby tries to take the slot, and the
	// first wait before reconnecting or re-applying after a failure
	// (DefaultRetryInterval); the waits after failures double up to
	// MaxRetryInterval (DefaultMaxRetryInterval).
	RetryInterval, MaxRetryInterval time.Duration
	// StatusInterval is how often the consumer tells the server how far it
	// has applied (DefaultStatusInterval). It must be well below the
	// server's wal_sender_timeout. A consumer killed between two reports
	// replays, on restart, the transactions it applied since the last one.
	StatusInterval time.Duration
	// ApplyTimeout bounds each invalidation's L2 write (DefaultApplyTimeout).
	ApplyTimeout time.Duration
	// BackplanePublishTimeout must be the cache's
	// Options.BackplanePublishTimeout if you changed it (default
	// core.DefaultBackplanePublishTimeout): a call that takes that long may
	// have returned before its publish was sent, and is applied again.
	BackplanePublishTimeout time.Duration
	// MaxTransactionKeys bounds the distinct keys and tags one transaction
	// holds in memory (DefaultMaxTransactionKeys); a transaction that
	// touches more clears the whole cache instead.
	MaxTransactionKeys int
	// Logger gets the consumer's logs (default: none).
	Logger *slog.Logger
	// OnApply, if set, is called after each transaction's invalidations
	// were applied and published, before the slot is told: from Run's
	// goroutine, so it must be quick. For metrics and tests.
	OnApply func(Transaction)
}

// Transaction is one committed transaction whose invalidations were applied.
type Transaction struct {
	// CommitTime is the commit's time on the database server's clock, the
	// version every invalidation of the transaction took (at least).
	CommitTime time.Time
	// EndLSN is where the transaction ends in the WAL: the position the
	// slot is told once it is applied.
	EndLSN pglogrepl.LSN
	// Keys, Tags and Clear are what was invalidated (Keys and Tags sorted).
	Keys, Tags []string
	Clear      bool
	// Attempts is how many times it was applied (more than one after a
	// failure).
	Attempts int
}

// Stats are a Consumer's counters.
type Stats struct {
	// Active reports whether this consumer holds the slot now.
	Active bool
	// Takeovers counts the times it took the slot.
	Takeovers uint64
	// Transactions counts the transactions applied; Invalidations the
	// cache calls made for them (Remove, Expire, ...by tag, Clear).
	Transactions, Invalidations uint64
	// Retries counts failed applications of a transaction (each retried).
	Retries uint64
	// BadMessages counts messages from the server that could not be
	// decoded or were not expected (logged, skipped).
	BadMessages uint64
	// Unresolved counts row changes missing a value a template needs
	// (they fell back to the rule's TruncateTag, or a Clear).
	Unresolved uint64
	// Skipped counts invalidations the cache refused (a key longer than
	// its MaxKeyLength, for example): no entry can exist under them.
	Skipped uint64
	// ClockAhead counts transactions whose commit time was more than
	// core.MaxChangedAtLead ahead of this node's clock: their
	// invalidations were stamped with the node's clock instead.
	ClockAhead uint64
	// ConfirmedLSN is the position up to which everything was applied.
	ConfirmedLSN pglogrepl.LSN
}

type counters struct {
	active                      atomic.Bool
	takeovers                   atomic.Uint64
	transactions, invalidations atomic.Uint64
	retries, bad, unresolved    atomic.Uint64
	skipped, clockAhead         atomic.Uint64
	confirmed                   atomic.Uint64
}

// Consumer streams a PostgreSQL database's committed changes from a
// logical replication slot (plugin pgoutput) and invalidates, through a
// core.Cache, the keys and tags its rules map the changed rows to. One
// consumer streams from a slot at a time; others run as standbys. Make it
// with New; its methods are safe for concurrent use.
type Consumer struct {
	cfg   *pgconn.Config
	rules map[string]*compiledRule
	o     Options
	log   *slog.Logger
	stats counters

	mu      sync.Mutex
	running bool
}

// Errors Run returns (wrapped, with details).
var (
	// ErrSlotActive: another consumer streams from the slot (with
	// Options.NoStandby; otherwise Run waits for it).
	ErrSlotActive = errors.New("pgcdc: replication slot is active for another consumer")
	// ErrNoSlot: the slot does not exist; run Setup.
	ErrNoSlot = errors.New("pgcdc: replication slot does not exist (run pgcdc.Setup)")
)

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// New checks the rules and options and returns a consumer of the database
// at connString (a PostgreSQL URL or keyword/value string, as pgx takes; the
// role needs the REPLICATION attribute). It does not connect.
func New(connString string, rules []Rule, o *Options) (*Consumer, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if err := opts.fill(); err != nil {
		return nil, err
	}
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgcdc: connection string: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	// Keepalives find a dead server (or network) in about 25s instead of
	// the kernel's two hours.
	d := &net.Dialer{Timeout: cmp.Or(cfg.ConnectTimeout, 10*time.Second), KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cfg.DialFunc = d.DialContext
	compiled, err := compileRules(rules)
	if err != nil {
		return nil, err
	}
	return &Consumer{cfg: cfg, rules: compiled, o: opts, log: opts.Logger}, nil
}

func (o *Options) fill() error {
	o.Publication = cmp.Or(o.Publication, DefaultPublication)
	o.Slot = cmp.Or(o.Slot, DefaultSlot)
	if !slotName.MatchString(o.Slot) {
		return fmt.Errorf("pgcdc: Options.Slot %q: want 1 to 63 lower-case letters, digits and _", o.Slot)
	}
	for _, d := range []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"RetryInterval", &o.RetryInterval, DefaultRetryInterval},
		{"MaxRetryInterval", &o.MaxRetryInterval, DefaultMaxRetryInterval},
		{"StatusInterval", &o.StatusInterval, DefaultStatusInterval},
		{"ApplyTimeout", &o.ApplyTimeout, DefaultApplyTimeout},
		{"BackplanePublishTimeout", &o.BackplanePublishTimeout, core.DefaultBackplanePublishTimeout},
	} {
		if *d.p < 0 {
			return fmt.Errorf("pgcdc: Options.%s %v: must not be negative", d.name, *d.p)
		}
		*d.p = cmp.Or(*d.p, d.def)
	}
	o.MaxRetryInterval = max(o.MaxRetryInterval, o.RetryInterval)
	if o.MaxTransactionKeys < 0 {
		return fmt.Errorf("pgcdc: Options.MaxTransactionKeys %d: must not be negative", o.MaxTransactionKeys)
	}
	o.MaxTransactionKeys = cmp.Or(o.MaxTransactionKeys, DefaultMaxTransactionKeys)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats returns a snapshot of the consumer's counters.
func (c *Consumer) Stats() Stats {
	s := &c.stats
	return Stats{
		Active: s.active.Load(), Takeovers: s.takeovers.Load(),
		Transactions: s.transactions.Load(), Invalidations: s.invalidations.Load(),
		Retries: s.retries.Load(), BadMessages: s.bad.Load(), Unresolved: s.unresolved.Load(),
		Skipped: s.skipped.Load(), ClockAhead: s.clockAhead.Load(), ConfirmedLSN: pglogrepl.LSN(s.confirmed.Load()),
	}
}

// Run streams changes and applies them to cache until ctx is done, then
// returns nil. Each transaction's invalidations are applied in commit
// order with the commit time as their version (core.WithChangedAt), and
// only once every one of them was written to L2 and published does the
// slot learn that the transaction is done: a consumer killed at any point
// loses nothing, and the next one (or this one, restarted) applies again
// what was not confirmed. When the slot is held by another consumer, Run
// stands by, trying again every Options.RetryInterval (or, with
// Options.NoStandby, returns an error wrapping ErrSlotActive). Connection
// failures and failed applications are retried with backoff. Run returns
// an error for what retrying cannot fix: a rule that does not fit its
// table (*RuleError), a missing slot (ErrNoSlot) or publication, an
// authentication or privilege error, or a closed cache.
//
// cache must use the same L2, backplane, Name, KeyPrefix and signing keys
// as the nodes, and must not be closed while Run runs. It may be a node's
// own cache; then errors of the node's other operations made while a
// transaction is applied make the consumer apply it again (see apply), and
// a cache of the consumer's own avoids those retries. One Run at a time per
// Consumer.
func (c *Consumer) Run(ctx context.Context, cache *core.Cache) error {
	if cache == nil {
		return errors.New("pgcdc: Run: nil cache")
	}
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("pgcdc: Run: already running")
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	failures := 0
	standingBy := false
	for {
		held, err := c.stream(ctx, cache)
		if ctx.Err() != nil {
			return nil
		}
		if held {
			failures = 0
			standingBy = false
		}
		wait := c.o.RetryInterval
		switch {
		case errors.Is(err, ErrSlotActive):
			if c.o.NoStandby {
				return err
			}
			if !standingBy {
				c.log.Info("pgcdc: standing by: the slot is held by another consumer", "slot", c.o.Slot, "retry_every", c.o.RetryInterval, "err", err)
				standingBy = true
			}
		case fatal(err):
			c.log.Error("pgcdc: stopped", "slot", c.o.Slot, "err", err)
			return err
		default:
			wait = c.backoff(failures)
			failures++
			c.log.Warn("pgcdc: stream failed; reconnecting", "slot", c.o.Slot, "in", wait, "err", err)
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

func (c *Consumer) backoff(failures int) time.Duration {
	d := c.o.RetryInterval
	for range min(failures, 16) {
		d *= 2
	}
	return min(d, c.o.MaxRetryInterval)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// fatal reports whether retrying cannot fix err.
func fatal(err error) bool {
	var re *RuleError
	if errors.As(err, &re) || errors.Is(err, ErrNoSlot) || errors.Is(err, core.ErrClosed) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28000", "28P01", "42501", "42704", "3D000", "55000":
			// invalid authorization, bad password, insufficient privilege,
			// undefined object (publication), no such database, object not
			// in prerequisite state (wal_level)
			return true
		}
	}
	return false
}
