//go:build sqlite

// The SQLite path, compiled in by the build tag sqlite only. make test and
// a plain go test do not run these tests (compiling SQLite's Go translation
// with -race costs about a minute of CPU); run them with
//
//	go test -race -tags sqlite ./examples/profileapi

package main

import (
	"path/filepath"
	"testing"

	"github.com/stratacache/strata/internal/redistest"
)

// TestSQLite runs the demo's scenario on three instances sharing one SQLite
// file, as built with -tags sqlite and started without a database URL.
func TestSQLite(t *testing.T) {
	if !sqliteBuilt {
		t.Fatal("built with -tags sqlite, but db_sqlite.go did not register SQLite")
	}
	u := "mem://profileapi-" + redistest.Unique()
	path := filepath.Join(t.TempDir(), "profiles.db")
	nodes := startInstances(t, 3, config{SQLitePath: path, L2URL: u, BackplaneURL: u})
	if got := nodes[0].app.db.system(); got != "sqlite" {
		t.Fatalf("database system %q, want sqlite", got)
	}
	checkUpdateSeen(t, nodes, true)
}
