package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/stratacache/strata/invalidation/pgcdc"
)

// Change data capture: with -cdc (CACHE_CDC=on) and PostgreSQL, every
// instance runs a pgcdc consumer of the profiles table against its cache,
// so that a change made straight in the database (psql, a batch job,
// another service) invalidates profile:{id} on every instance, as an
// update through POST does. One instance streams from the slot; the others
// stand by and take over when it dies (docs/invalidation.md). The database
// role needs the REPLICATION attribute and the server wal_level=logical.
var (
	cdcOn   = flag.Bool("cdc", env("CACHE_CDC", "") == "on", "invalidate from the database's change log (PostgreSQL, wal_level=logical) [CACHE_CDC=on]")
	cdcSlot = flag.String("cdc-slot", os.Getenv("CDC_SLOT"), "logical replication slot and publication name (default strata_TABLE) [CDC_SLOT]")
)

// startCDC runs, with -cdc, the consumer until ctx is done or stop is
// called; without -cdc it does nothing.
func startCDC(ctx context.Context, cfg config, a *app) (stop func() error, err error) {
	if !*cdcOn {
		return func() error { return nil }, nil
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("-cdc needs PostgreSQL: set -database-url (DATABASE_URL)")
	}
	name := *cdcSlot
	if name == "" {
		name = "strata_" + cfg.Table
		if len(name) > 63 {
			name = name[:63]
		}
	}
	rules := []pgcdc.Rule{{Table: cfg.Table, Keys: []string{"profile:{id}"}}}
	opts := &pgcdc.Options{Publication: name, Slot: name, Logger: a.log}
	// Idempotent, and safe when the instances start together.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := pgcdc.Setup(sctx, cfg.DatabaseURL, rules, opts)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("-cdc: %w", err)
	}
	consumer, err := pgcdc.New(cfg.DatabaseURL, rules, opts)
	if err != nil {
		return nil, fmt.Errorf("-cdc: %w", err)
	}
	a.log.Info("change data capture on", "slot", name, "created_slot", res.CreatedSlot, "created_publication", res.CreatedPublication)
	rctx, cancelRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(rctx, a.cache) }()
	return func() error {
		cancelRun()
		return <-done
	}, nil
}
