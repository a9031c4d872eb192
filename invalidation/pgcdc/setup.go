package pgcdc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors Setup returns (wrapped, with details and what to do).
var (
	// ErrWalLevel: the server's wal_level is not logical.
	ErrWalLevel = errors.New("pgcdc: wal_level is not logical")
	// ErrNoReplication: the role may not stream changes.
	ErrNoReplication = errors.New("pgcdc: the role lacks the REPLICATION attribute")
	// ErrSlotTaken: a slot of that name exists but is not one a consumer
	// can use (another plugin, another database, or a physical slot).
	ErrSlotTaken = errors.New("pgcdc: the slot name is taken")
)

// SetupResult says what Setup found and did.
type SetupResult struct {
	// CreatedPublication and CreatedSlot report what Setup created;
	// AddedTables the tables it added to an existing publication.
	CreatedPublication, CreatedSlot bool
	AddedTables                     []string
	// SlotActivePID is the server process streaming from the slot now (a
	// consumer holds it), 0 if none.
	SlotActivePID int
}

// Setup prepares the database at connString for a Consumer with these
// rules and options: it checks that wal_level is logical and that the role
// may replicate, checks every rule against its table (columns and replica
// identity), creates the publication (or adds the rules' missing tables to
// it) and creates the logical replication slot (plugin pgoutput). It is
// idempotent, and safe to run from every node at once. The role must own
// the tables (to publish them) and have REPLICATION (or be a superuser; on
// AWS RDS and Aurora, a member of rds_replication).
//
// A slot that exists is kept, with its position. Errors wrap ErrWalLevel,
// ErrNoReplication, ErrSlotTaken or a *RuleError, naming the fix.
func Setup(ctx context.Context, connString string, rules []Rule, o *Options) (*SetupResult, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if err := opts.fill(); err != nil {
		return nil, err
	}
	compiled, err := compileRules(rules)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("pgcdc: setup: connect: %w", err)
	}
	defer conn.Close(context.Background())

	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return nil, fmt.Errorf("pgcdc: setup: %w", err)
	}
	if walLevel != "logical" {
		return nil, fmt.Errorf("%w: it is %q: set wal_level = logical and restart the server "+
			"(AWS RDS and Aurora: rds.logical_replication = 1 in the parameter group; Google Cloud SQL: the flag cloudsql.logical_decoding = on; "+
			"Azure Database for PostgreSQL: the server parameter wal_level = logical)", ErrWalLevel, walLevel)
	}
	var role string
	var canReplicate bool
	err = conn.QueryRow(ctx, `SELECT current_user, r.rolreplication OR r.rolsuper OR EXISTS (
			SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND pg_has_role(current_user, g.oid, 'member'))
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&role, &canReplicate)
	if err != nil {
		return nil, fmt.Errorf("pgcdc: setup: %w", err)
	}
	if !canReplicate {
		return nil, fmt.Errorf("%w: role %q: run ALTER ROLE %s REPLICATION as a superuser (AWS RDS and Aurora: GRANT rds_replication TO %s)",
			ErrNoReplication, role, quoteIdent(role), quoteIdent(role))
	}
	for _, r := range compiled {
		if err := checkTable(ctx, conn, r); err != nil {
			return nil, err
		}
	}
	res := &SetupResult{}
	if err := setupPublication(ctx, conn, opts.Publication, compiled, res); err != nil {
		return nil, err
	}
	if err := setupSlot(ctx, conn, opts.Slot, res); err != nil {
		return nil, err
	}
	return res, nil
}

// checkTable checks r against its table as the catalog describes it: the
// same check a consumer makes when the stream describes the table.
func checkTable(ctx context.Context, conn *pgx.Conn, r *compiledRule) error {
	var identity string
	var oid uint32
	err := conn.QueryRow(ctx, `SELECT c.oid, c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, r.schema, r.name).Scan(&oid, &identity)
	if errors.Is(err, pgx.ErrNoRows) {
		return &RuleError{Table: r.Table, Field: "Table", Value: r.Table, Why: fmt.Sprintf("no table %s in this database", r.qualified())}
	}
	if err != nil {
		return fmt.Errorf("pgcdc: setup: table %s: %w", r.qualified(), err)
	}
	// The replica identity's columns: the primary key ('d'), the index
	// ('i'); every column for 'f'.
	rows, err := conn.Query(ctx, `SELECT a.attname, COALESCE(a.attnum = ANY(i.indkey), false)
		FROM pg_attribute a
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND
			((i.indisprimary AND $2 = 'd') OR (i.indisreplident AND $2 = 'i'))
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid, identity)
	if err != nil {
		return fmt.Errorf("pgcdc: setup: table %s: %w", r.qualified(), err)
	}
	cols, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (column, error) {
		var c column
		err := row.Scan(&c.name, &c.key)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("pgcdc: setup: table %s: %w", r.qualified(), err)
	}
	if len(identity) != 1 {
		return fmt.Errorf("pgcdc: setup: table %s: replica identity %q", r.qualified(), identity)
	}
	_, err = bind(r, identity[0], cols)
	return err
}

func setupPublication(ctx context.Context, conn *pgx.Conn, name string, rules map[string]*compiledRule, res *SetupResult) error {
	var all, ins, upd, del, trunc bool
	err := conn.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`, name).
		Scan(&all, &ins, &upd, &del, &trunc)
	if errors.Is(err, pgx.ErrNoRows) {
		var tables []string
		for _, r := range rules {
			tables = append(tables, quoteQualified(r.schema, r.name))
		}
		_, err = conn.Exec(ctx, "CREATE PUBLICATION "+quoteIdent(name)+" FOR TABLE "+strings.Join(slices.Sorted(slices.Values(tables)), ", "))
		if isDuplicate(err) { // another node created it meanwhile
			return setupPublication(ctx, conn, name, rules, res)
		}
		if err != nil {
			return fmt.Errorf("pgcdc: setup: create publication %q: %w", name, err)
		}
		res.CreatedPublication = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcdc: setup: publication %q: %w", name, err)
	}
	if !(ins && upd && del && trunc) {
		return fmt.Errorf("pgcdc: setup: publication %q does not publish every change (insert %v, update %v, delete %v, truncate %v): "+
			"run ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')", name, ins, upd, del, trunc, quoteIdent(name))
	}
	if all {
		return nil
	}
	for _, key := range slices.Sorted(maps.Keys(rules)) {
		r := rules[key]
		var in bool
		err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)`,
			name, r.schema, r.name).Scan(&in)
		if err != nil {
			return fmt.Errorf("pgcdc: setup: publication %q: %w", name, err)
		}
		if in {
			continue
		}
		_, err = conn.Exec(ctx, "ALTER PUBLICATION "+quoteIdent(name)+" ADD TABLE "+quoteQualified(r.schema, r.name))
		if isDuplicate(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pgcdc: setup: add %s to publication %q: %w", r.qualified(), name, err)
		}
		res.AddedTables = append(res.AddedTables, r.qualified())
	}
	return nil
}

func setupSlot(ctx context.Context, conn *pgx.Conn, name string, res *SetupResult) error {
	var slotType, db string
	var plugin *string
	var pid *int32
	err := conn.QueryRow(ctx, `SELECT slot_type, plugin, COALESCE(database::text, ''), active_pid FROM pg_replication_slots WHERE slot_name = $1`, name).
		Scan(&slotType, &plugin, &db, &pid)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = conn.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, name)
		if isDuplicate(err) {
			return setupSlot(ctx, conn, name, res)
		}
		if err != nil {
			return fmt.Errorf("pgcdc: setup: create slot %q: %w", name, err)
		}
		res.CreatedSlot = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcdc: setup: slot %q: %w", name, err)
	}
	var current string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&current); err != nil {
		return fmt.Errorf("pgcdc: setup: %w", err)
	}
	switch {
	case slotType != "logical":
		return fmt.Errorf("%w: %q is a %s slot; choose another Options.Slot", ErrSlotTaken, name, slotType)
	case plugin == nil || *plugin != "pgoutput":
		return fmt.Errorf("%w: %q uses the plugin %q, not pgoutput; choose another Options.Slot", ErrSlotTaken, name, deref(plugin))
	case db != current:
		return fmt.Errorf("%w: %q belongs to the database %q, not %q; choose another Options.Slot", ErrSlotTaken, name, db, current)
	}
	if pid != nil {
		res.SlotActivePID = int(*pid)
	}
	return nil
}

func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42710" || pe.Code == "23505")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
