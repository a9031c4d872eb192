//go:build sqlite

package main

import _ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go

// Built with -tags sqlite, the service can keep its profiles in a SQLite
// file (-sqlite, SQLITE_PATH) when no -database-url is given.
func init() { sqliteBuilt = true }
