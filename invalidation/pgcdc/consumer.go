package pgcdc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

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
	// ConfirmedLSN is the position up to which everything was applied.
	ConfirmedLSN pglogrepl.LSN
}

type counters struct {
	active                      atomic.Bool
	takeovers                   atomic.Uint64
	transactions, invalidations atomic.Uint64
	retries, bad, unresolved    atomic.Uint64
	skipped                     atomic.Uint64
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
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}}
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
		Skipped: s.skipped.Load(), ConfirmedLSN: pglogrepl.LSN(s.confirmed.Load()),
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
// cache must use the same L2 and backplane as the nodes (it may be one of
// them); it must not be closed while Run runs. One Run at a time per
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

// stream holds the slot for one connection: it connects, starts
// replication and applies what arrives until an error or ctx ends it. held
// reports whether it got the slot.
func (c *Consumer) stream(ctx context.Context, cache *core.Cache) (held bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := pgconn.ConnectConfig(cctx, c.cfg)
	cancel()
	if err != nil {
		return false, fmt.Errorf("pgcdc: connect: %w", err)
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, c.o.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + strings.ReplaceAll(c.o.Publication, "'", "''") + "'"},
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch {
			case pe.Code == "55006":
				return false, fmt.Errorf("%w: %s", ErrSlotActive, pe.Message)
			case pe.Code == "42704" && strings.Contains(pe.Message, "slot"):
				return false, fmt.Errorf("%w: %q: %s", ErrNoSlot, c.o.Slot, pe.Message)
			}
		}
		return false, fmt.Errorf("pgcdc: start replication on slot %q: %w", c.o.Slot, err)
	}
	c.stats.active.Store(true)
	c.stats.takeovers.Add(1)
	defer c.stats.active.Store(false)
	c.log.Info("pgcdc: streaming: this consumer holds the slot", "slot", c.o.Slot, "publication", c.o.Publication)
	s := &session{c: c, conn: conn, cache: cache, relations: map[uint32]*boundRule{}, confirmed: pglogrepl.LSN(c.stats.confirmed.Load())}
	return true, s.run(ctx)
}

// session is one replication connection's state.
type session struct {
	c         *Consumer
	conn      *pgconn.PgConn
	cache     *core.Cache
	relations map[uint32]*boundRule // nil value: a table without a rule
	names     map[uint32]string

	tx         *batch // the open transaction, nil between transactions
	commitAt   time.Time
	confirmed  pglogrepl.LSN
	nextReport time.Time
}

func (s *session) run(ctx context.Context) error {
	s.names = map[uint32]string{}
	for {
		if !time.Now().Before(s.nextReport) {
			if err := s.report(false); err != nil {
				return err
			}
		}
		rctx, cancel := context.WithDeadline(ctx, s.nextReport)
		raw, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				s.goodbye()
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("pgcdc: receive: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			if err := s.handle(ctx, m.Data); err != nil {
				if ctx.Err() != nil {
					s.goodbye()
					return ctx.Err()
				}
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("pgcdc: server: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return errors.New("pgcdc: the server ended the stream")
		default:
			s.bad("unexpected protocol message", fmt.Sprintf("%T", raw), nil)
		}
	}
}

// goodbye tells the server how far this consumer got, before it leaves.
func (s *session) goodbye() { _ = s.report(false) }

// report sends the position applied so far.
func (s *session) report(replyRequested bool) error {
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: s.confirmed, ReplyRequested: replyRequested,
	})
	s.nextReport = time.Now().Add(s.c.o.StatusInterval)
	if err != nil {
		return fmt.Errorf("pgcdc: send status: %w", err)
	}
	return nil
}

func (s *session) bad(what, detail string, err error) {
	s.c.stats.bad.Add(1)
	s.c.log.Warn("pgcdc: bad message from the server; skipped", "what", what, "detail", detail, "err", err)
}

func (s *session) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		s.bad("empty CopyData", "", nil)
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			s.bad("keepalive", "", err)
			return nil
		}
		// Everything the server decoded before this keepalive was sent
		// before it: when no transaction is open, all of it is applied.
		if s.tx == nil && k.ServerWALEnd > s.confirmed {
			s.setConfirmed(k.ServerWALEnd)
		}
		if k.ReplyRequested {
			return s.report(false)
		}
		return nil
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			s.bad("XLogData", "", err)
			return nil
		}
		return s.logical(ctx, x.WALData)
	}
	s.bad("unknown CopyData", fmt.Sprintf("type %q", data[0]), nil)
	return nil
}

// parse decodes a pgoutput message; pglogrepl may panic on a truncated one.
func parse(data []byte) (m pglogrepl.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("undecodable (%v)", r)
		}
	}()
	if len(data) == 0 {
		return nil, errors.New("empty")
	}
	return pglogrepl.Parse(data)
}

func (s *session) logical(ctx context.Context, data []byte) error {
	msg, err := parse(data)
	if err != nil {
		s.bad("pgoutput", "", err)
		// A change we cannot read may be one to apply: the open
		// transaction clears the cache, to lose nothing.
		if s.tx != nil {
			s.tx.addClear(Remove)
		}
		return nil
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		name := m.Namespace + "." + m.RelationName
		s.names[m.RelationID] = name
		r, ok := s.c.rules[name]
		if !ok {
			s.relations[m.RelationID] = nil
			return nil
		}
		b, err := bindRelation(r, m)
		if err != nil {
			return err
		}
		s.relations[m.RelationID] = b
	case *pglogrepl.BeginMessage:
		if s.tx != nil {
			s.bad("BEGIN inside a transaction", "", nil)
		}
		s.tx = newBatch(s.c.o.MaxTransactionKeys)
		s.commitAt = m.CommitTime
	case *pglogrepl.InsertMessage:
		if b, ok := s.rule(m.RelationID, "INSERT"); ok && b != nil {
			s.row(b, m.Tuple, nil)
		}
	case *pglogrepl.UpdateMessage:
		if b, ok := s.rule(m.RelationID, "UPDATE"); ok && b != nil {
			if m.OldTuple != nil {
				s.row(b, m.OldTuple, nil)
			}
			s.row(b, m.NewTuple, m.OldTuple)
		}
	case *pglogrepl.DeleteMessage:
		if b, ok := s.rule(m.RelationID, "DELETE"); ok && b != nil {
			s.row(b, m.OldTuple, nil)
		}
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if b, ok := s.rule(id, "TRUNCATE"); ok && b != nil {
				b.addTruncate(s.tx)
			}
		}
	case *pglogrepl.CommitMessage:
		if s.tx == nil {
			s.bad("COMMIT outside a transaction", m.TransactionEndLSN.String(), nil)
			return nil
		}
		if err := s.commit(ctx, m); err != nil {
			return err
		}
	case *pglogrepl.OriginMessage, *pglogrepl.TypeMessage, *pglogrepl.LogicalDecodingMessage:
		// Nothing to invalidate.
	default:
		s.bad("unexpected pgoutput message", msg.Type().String(), nil)
	}
	return nil
}

// rule returns the bound rule of a relation (nil: no rule for it). ok is
// false, after counting a bad message and making the open transaction
// clear the cache, when the relation was never described or no
// transaction is open.
func (s *session) rule(id uint32, op string) (*boundRule, bool) {
	b, known := s.relations[id]
	switch {
	case s.tx == nil:
		s.bad(op+" outside a transaction", fmt.Sprint(id), nil)
		return nil, false
	case !known:
		s.bad(op+" of a relation never described", fmt.Sprint(id), nil)
		s.tx.addClear(Remove)
		return nil, false
	}
	return b, true
}

func (s *session) row(b *boundRule, row, fallback *pglogrepl.TupleData) {
	if row == nil {
		s.c.stats.unresolved.Add(1)
		b.addTruncate(s.tx)
		return
	}
	if !b.addRow(s.tx, row, fallback) {
		s.c.stats.unresolved.Add(1)
		s.c.log.Warn("pgcdc: a row change lacks a value its templates need; falling back", "table", b.qualified(), "truncate_tag", b.TruncateTag)
	}
}

// commit applies the open transaction, retrying until it is applied (or
// ctx ends), keeping the connection alive meanwhile, then moves the
// confirmed position past it.
func (s *session) commit(ctx context.Context, m *pglogrepl.CommitMessage) error {
	tx := s.tx
	commitAt := cmp.Or(m.CommitTime, s.commitAt)
	attempts := 0
	if !tx.empty() {
		for failures := 0; ; failures++ {
			attempts++
			calls, err := s.c.apply(ctx, s.cache, tx, commitAt)
			s.c.stats.invalidations.Add(uint64(calls))
			if err == nil {
				break
			}
			if ctx.Err() != nil || errors.Is(err, core.ErrClosed) {
				return err
			}
			s.c.stats.retries.Add(1)
			wait := s.c.backoff(failures)
			s.c.log.Warn("pgcdc: applying a transaction failed; retrying", "end_lsn", m.TransactionEndLSN, "in", wait, "err", err)
			if err := s.wait(ctx, wait); err != nil {
				return err
			}
		}
	}
	s.tx = nil
	s.setConfirmed(m.TransactionEndLSN)
	s.c.stats.transactions.Add(1)
	if s.c.o.OnApply != nil && attempts > 0 {
		t := Transaction{CommitTime: commitAt, EndLSN: m.TransactionEndLSN, Clear: tx.clear, Attempts: attempts}
		t.Keys = sortedKeys(tx.keys)
		t.Tags = sortedKeys(tx.tags)
		s.c.o.OnApply(t)
	}
	return nil
}

func (s *session) setConfirmed(l pglogrepl.LSN) {
	if l > s.confirmed {
		s.confirmed = l
		s.c.stats.confirmed.Store(uint64(l))
	}
}

// wait waits d while telling the server, every StatusInterval, that this
// consumer is alive (the position does not move).
func (s *session) wait(ctx context.Context, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		if !sleep(ctx, min(left, s.c.o.StatusInterval)) {
			return ctx.Err()
		}
		if err := s.report(false); err != nil {
			return err
		}
	}
}
