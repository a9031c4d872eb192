package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// sqliteBuilt reports whether the SQLite driver is compiled in: only with
// the build tag sqlite (db_sqlite.go), which keeps SQLite's large Go
// translation out of the default build and of go test.
var sqliteBuilt bool

// errNoDatabase is openStore's error when no database URL is given and
// SQLite is not compiled in.
var errNoDatabase = errors.New("no database: set -database-url postgres://... (DATABASE_URL), " +
	"or build with -tags sqlite to use a SQLite file (-sqlite, SQLITE_PATH)")

// Profile is a user's profile as the service stores and serves it. Role and
// the two flags are what other services check before letting the user act:
// a node serving an old copy after an update keeps granting a revoked
// permission, which is why every instance must see the change at once.
type Profile struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	// Role is "admin", "support" or "viewer".
	Role string `json:"role"`
	// CanDeleteOrders is a permission: may this user delete orders?
	CanDeleteOrders bool `json:"can_delete_orders"`
	// BetaCheckout is a feature flag: does this user get the new checkout?
	BetaCheckout bool `json:"beta_checkout"`
	// Version counts the updates of the row.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProfilePatch is the body of POST /profile/{id}: the fields to change; a
// field left out keeps its value.
type ProfilePatch struct {
	Name            *string `json:"name"`
	Email           *string `json:"email"`
	Role            *string `json:"role"`
	CanDeleteOrders *bool   `json:"can_delete_orders"`
	BetaCheckout    *bool   `json:"beta_checkout"`
}

var roles = []string{"admin", "support", "viewer"}

// validate reports the first field of p that cannot be stored.
func (p *ProfilePatch) validate() error {
	if p.Role != nil && !slices.Contains(roles, *p.Role) {
		return fmt.Errorf("role %q: want one of %s", *p.Role, strings.Join(roles, ", "))
	}
	if p.Name != nil && *p.Name == "" {
		return errors.New("name must not be empty")
	}
	if p.Name == nil && p.Email == nil && p.Role == nil && p.CanDeleteOrders == nil && p.BetaCheckout == nil {
		return errors.New("nothing to change: give at least one of name, email, role, can_delete_orders, beta_checkout")
	}
	return nil
}

// errNotFound is what the store returns for an unknown profile id.
var errNotFound = errors.New("profile not found")

// store is the source of truth: one table in PostgreSQL or, built with
// -tags sqlite, in SQLite (a file shared by the instances of one machine). Its methods are safe for
// concurrent use.
type store struct {
	db     *sql.DB
	table  string
	driver string // "sqlite" or "pgx"
}

// seed is what a new table holds: profile 42 is the demo's.
var seed = []Profile{
	{ID: 7, Name: "Grace Hopper", Email: "grace@example.com", Role: "support", CanDeleteOrders: false, BetaCheckout: true},
	{ID: 42, Name: "Ada Lovelace", Email: "ada@example.com", Role: "admin", CanDeleteOrders: true, BetaCheckout: false},
	{ID: 99, Name: "Alan Turing", Email: "alan@example.com", Role: "viewer", CanDeleteOrders: false, BetaCheckout: false},
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// openStore opens PostgreSQL when databaseURL is set (postgres://...), else
// the SQLite file at sqlitePath (created if missing) when SQLite is built in
// (errNoDatabase when it is not), creates the table if it does not exist and
// adds the seed profiles that are missing.
func openStore(ctx context.Context, databaseURL, sqlitePath, table string) (*store, error) {
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("table name %q: want lower-case letters, digits and _", table)
	}
	if databaseURL == "" && !sqliteBuilt {
		return nil, errNoDatabase
	}
	s := &store{table: table}
	var err error
	if databaseURL != "" {
		s.driver = "pgx"
		s.db, err = sql.Open("pgx", databaseURL)
	} else {
		// WAL lets the instances sharing the file read while one writes;
		// busy_timeout makes a writer wait for another instead of failing.
		s.driver = "sqlite"
		dsn := "file:" + sqlitePath + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
		s.db, err = sql.Open("sqlite", dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	// Instances starting together may race to create the table
	// (PostgreSQL reports a duplicate type): the second try sees it.
	for try := 0; try < 3; try++ {
		if err = s.init(ctx); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("database %s: %w", s.describe(databaseURL, sqlitePath), err)
	}
	return s, nil
}

// describe names the database for logs, without a password.
func (s *store) describe(databaseURL, sqlitePath string) string {
	if databaseURL == "" {
		return "sqlite " + sqlitePath
	}
	if u, err := url.Parse(databaseURL); err == nil {
		return "postgres " + u.Redacted()
	}
	return "postgres"
}

func (s *store) init(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ddl := `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
		id BIGINT PRIMARY KEY,
		name TEXT NOT NULL,
		email TEXT NOT NULL,
		role TEXT NOT NULL,
		can_delete_orders BOOLEAN NOT NULL,
		beta_checkout BOOLEAN NOT NULL,
		version BIGINT NOT NULL,
		updated_at BIGINT NOT NULL)`
	if _, err := s.db.ExecContext(ctx, ddl); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	for _, p := range seed {
		_, err := s.db.ExecContext(ctx, `INSERT INTO `+s.table+
			` (id, name, email, role, can_delete_orders, beta_checkout, version, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 1, $7) ON CONFLICT (id) DO NOTHING`,
			p.ID, p.Name, p.Email, p.Role, p.CanDeleteOrders, p.BetaCheckout, now)
		if err != nil {
			return err
		}
	}
	return nil
}

const columns = `id, name, email, role, can_delete_orders, beta_checkout, version, updated_at`

func scanProfile(row *sql.Row) (Profile, error) {
	var p Profile
	var updated int64
	err := row.Scan(&p.ID, &p.Name, &p.Email, &p.Role, &p.CanDeleteOrders, &p.BetaCheckout, &p.Version, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Profile{}, errNotFound
	}
	p.UpdatedAt = time.UnixMilli(updated).UTC()
	return p, err
}

// get reads one profile; errNotFound if there is none.
func (s *store) get(ctx context.Context, id int64) (Profile, error) {
	return scanProfile(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM `+s.table+` WHERE id = $1`, id))
}

// update applies patch to one profile, bumps its version and returns the
// row as stored; errNotFound if there is none.
func (s *store) update(ctx context.Context, id int64, patch ProfilePatch) (Profile, error) {
	return scanProfile(s.db.QueryRowContext(ctx, `UPDATE `+s.table+` SET
		name = COALESCE($2, name),
		email = COALESCE($3, email),
		role = COALESCE($4, role),
		can_delete_orders = COALESCE($5, can_delete_orders),
		beta_checkout = COALESCE($6, beta_checkout),
		version = version + 1,
		updated_at = $7
		WHERE id = $1 RETURNING `+columns,
		id, patch.Name, patch.Email, patch.Role, patch.CanDeleteOrders, patch.BetaCheckout, time.Now().UnixMilli()))
}

// system is the db.system.name of the store's spans.
func (s *store) system() string {
	if s.driver == "pgx" {
		return "postgresql"
	}
	return "sqlite"
}

func (s *store) close() error { return s.db.Close() }
