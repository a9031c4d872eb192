package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultSharedURL is the shared server's URL when $STRATA_POSTGRES_URL is
// not set: the local PostgreSQL that scripts/services.sh starts.
const DefaultSharedURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SharedURL returns the URL of the shared PostgreSQL server,
// $STRATA_POSTGRES_URL or DefaultSharedURL, after checking that it answers.
// When it does not, SharedURL skips the test, or fails it when $CI is
// "true". Tests that write to it use a table of their own (Table).
func SharedURL(tb testing.TB) string {
	tb.Helper()
	u := cmp.Or(os.Getenv("STRATA_POSTGRES_URL"), DefaultSharedURL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, u)
	if err == nil {
		err = conn.Close(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("pgtest: PostgreSQL at %s (STRATA_POSTGRES_URL) is unreachable, and CI=true forbids skipping: %v", u, err)
		}
		tb.Skipf("skipping: PostgreSQL at %s (STRATA_POSTGRES_URL) is unreachable: %v", u, err)
	}
	return u
}

// Table returns a table name unique to this call, prefix followed by an
// underscore and 16 random lower-case letters and digits, and drops the
// table from the server at url when the test ends (whether or not the test
// created it). prefix must be a valid lower-case SQL identifier of at most
// 46 characters.
func Table(tb testing.TB, url, prefix string) string {
	tb.Helper()
	name := prefix + "_" + strings.ToLower(rand.Text()[:16])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgconn.Connect(ctx, url)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP TABLE IF EXISTS "+name).ReadAll()
			err = errors.Join(err, conn.Close(ctx))
		}
		if err != nil {
			tb.Errorf("pgtest: dropping table %s: %v", name, err)
		}
	})
	return name
}
