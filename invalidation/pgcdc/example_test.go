package pgcdc_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/invalidation/pgcdc"
)

// Every node runs the same code: one streams from the slot, the others
// stand by and take over when it dies. cache is the node's cache, on the L2
// and backplane every node shares.
func Example() {
	var cache *core.Cache // core.New(core.Options{Name: "profiles", L2: ..., Backplane: ...})
	ctx := context.Background()
	db := "postgres://cdc@db.internal:5432/app" // a role with REPLICATION

	rules := []pgcdc.Rule{{
		Table: "public.profiles",
		Keys:  []string{"profile:{id}"},
		// The old row must carry tenant_id: ALTER TABLE profiles REPLICA IDENTITY FULL.
		Tags:        []string{"tenant:{tenant_id}"},
		TruncateTag: "table:profiles",
	}}
	opts := &pgcdc.Options{Slot: "strata_profiles", Publication: "strata_profiles", Logger: slog.Default()}

	// Idempotent: creates the publication and the slot if missing.
	if _, err := pgcdc.Setup(ctx, db, rules, opts); err != nil {
		log.Fatal(err)
	}
	consumer, err := pgcdc.New(db, rules, opts)
	if err != nil {
		log.Fatal(err)
	}
	// Until ctx is done; an error only for what retrying cannot fix.
	if err := consumer.Run(ctx, cache); err != nil {
		log.Fatal(err)
	}
}
