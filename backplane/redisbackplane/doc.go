// Package redisbackplane is the Redis pub/sub backplane.Backplane of strata,
// on a go-redis client the user owns (a single node, a Sentinel-managed
// failover client or a Redis Cluster client).
//
// New takes the client; the backplane never closes it. Importing the package
// registers the "redis" and "rediss" URL schemes, so that
// backplane.Open(ctx, "redis://host:6379?health_check_interval=2s") gives a
// backplane on a client of its own (closed by the backplane's Close).
//
// Publish sends PUBLISH (SPUBLISH with Options.Sharded, for Redis Cluster's
// sharded pub/sub). Each Subscribe opens a pub/sub connection of its own
// (SUBSCRIBE, or SSUBSCRIBE), waits for the server's confirmation before it
// returns, and delivers payloads from one goroutine, so the callbacks of a
// subscription never run concurrently.
//
// go-redis reconnects a pub/sub connection and resubscribes by itself,
// silently. A subscription watches for that and reports it, so that core can
// expire what it may have missed: backplane.Disconnected on the first error
// of the connection (a closed or reset connection, a failed redial), or when
// the server leaves a health-check PING unanswered (Options.HealthCheckInterval:
// a connection silent for one interval is pinged, and one silent for another
// interval is replaced), or when the server ends the subscription
// (SUNSUBSCRIBE when a sharded channel's slot moves on Redis Cluster, which
// go-redis does not follow: the subscription resubscribes on the slot's new
// node); backplane.Reconnected when the server confirms the subscription
// again. Redis itself drops a subscriber that falls too far
// behind (client-output-buffer-limit pubsub) by closing its connection, so
// loss shows as Disconnected/Reconnected; backplane.Lost is never reported.
//
// Every call honours its context, deadline and cancellation alike, even when
// the client does not apply contexts to network I/O (go-redis's
// ContextTimeoutEnabled). docs/redis.md has the URL options, cluster notes and
// how the tests run.
package redisbackplane
