// Command strata invalidates, watches and inspects strata caches from the
// shell: the tool for operators, batch jobs and services that change data
// without going through a strata node.
//
// Usage:
//
//	strata invalidate -backplane URL [-l2 URL] -cache NAME [-key-prefix P] [-key K]... [-tag T]... [-clear] [-expire]
//	strata watch -backplane URL -cache NAME [-json] [-probes] [-n N]
//	strata inspect -l2 URL [-cache NAME] [-key-prefix P] [-json] KEY
//
// invalidate does on L2 and the backplane exactly what Cache.Remove,
// RemoveByTag and Clear (or Expire, ExpireByTag and Clear(true) with
// -expire) do on a node, and exits 0 only when every L2 write and every
// publish succeeded. watch prints each backplane message of a cache,
// decoded, until interrupted. inspect prints the L2 envelope stored for a
// key. Signing keys (core.Options.BackplaneSigningKeys) come from
// $STRATA_SIGNING_KEYS or -keys-file. URLs are those of backplane.Open and
// l2.Open: redis://, rediss://, nats://, amqp://, amqps:// (backplanes) and
// redis://, rediss://, nats:// (L2).
//
// Exit status: 0 on success, 1 when the command failed, 2 for bad usage.
// See docs/cli.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// go-redis logs each failed dial on its own; the commands report what
	// failed, once.
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// quietLogger drops go-redis's internal logs.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
