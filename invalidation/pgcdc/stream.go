package pgcdc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stratacache/strata/core"
)

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

	tx         *batch // the open transaction, nil between transactions
	commitAt   time.Time
	confirmed  pglogrepl.LSN
	nextReport time.Time
}

func (s *session) run(ctx context.Context) error {
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
