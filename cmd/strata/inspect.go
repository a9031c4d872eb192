package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/l2"
)

const inspectAbout = `Prints the L2 envelope stored for KEY (under the cache's key prefix): its
kind (value or tombstone), version and the time it stands for, logical
expiry, fail-safe flag, the store's own expiry (when fail-safe lets the value
be served stale up to; Redis stores only), eager refresh time, tags, ETag,
last modified, sizes and the value (text when it is printable UTF-8, else
hex). Exit status 1 when there is no entry or it does not decode.`

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "inspect"
	fs := newFlagSet(cmd, "-l2 URL [-cache NAME] [-key-prefix P] [-json] KEY", inspectAbout, stderr)
	l2URL := fs.String("l2", "", "L2 `URL` of the cache's nodes (redis://, nats://); required")
	name := fs.String("cache", "", "cache `NAME`, shown only: entries are stored under the key prefix, not the name")
	prefix := fs.String("key-prefix", "", "the cache's core.Options.KeyPrefix")
	asJSON := fs.Bool("json", false, "print the envelope as one JSON object")
	maxValue := fs.Int("max-value", 4096, "print at most `N` bytes of the value (0: none)")
	timeout := fs.Duration("timeout", defaultTimeout, "bound on the whole command")
	if code := fs.parse(args, stdout); code >= 0 {
		return code
	}
	switch {
	case fs.NArg() == 0:
		return usageError(stderr, cmd, "KEY is required")
	case fs.NArg() > 1:
		return usageError(stderr, cmd, "one KEY only, got %d arguments (flags go before KEY)", fs.NArg())
	case *l2URL == "":
		return usageError(stderr, cmd, "-l2 is required")
	case *maxValue < 0:
		return usageError(stderr, cmd, "-max-value %d must not be negative", *maxValue)
	case *timeout <= 0:
		return usageError(stderr, cmd, "-timeout %v must be positive", *timeout)
	}
	key := fs.Arg(0)
	storeKey := *prefix + key

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	store, err := l2.Open(ctx, *l2URL)
	if err != nil {
		return failure(stderr, cmd, fmt.Errorf("-l2: %w", err))
	}
	defer store.Close()
	b, found, err := store.Get(ctx, storeKey)
	if err != nil {
		return failure(stderr, cmd, fmt.Errorf("reading %q: %w", storeKey, err))
	}
	if !found {
		fmt.Fprintf(stderr, "%s %s: no entry under %q in L2\n", programName, cmd, storeKey)
		return exitFailed
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		return failure(stderr, cmd, fmt.Errorf("the bytes under %q are not a strata entry: %w", storeKey, err))
	}
	ttl, hasTTL, err := storeTTL(ctx, *l2URL, storeKey)
	if err != nil {
		return failure(stderr, cmd, fmt.Errorf("reading the TTL of %q: %w", storeKey, err))
	}
	now := time.Now()
	r := report(*name, key, storeKey, env, len(b), now, *maxValue)
	if hasTTL {
		t := now.Add(ttl).UTC()
		r.StoreExpires = &t
	}
	if *asJSON {
		out, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return exitOK
	}
	r.print(stdout, now)
	return exitOK
}

// inspectReport is what inspect prints, also its -json form.
type inspectReport struct {
	Cache         string     `json:"cache,omitempty"`
	Key           string     `json:"key"`
	StoreKey      string     `json:"store_key"`
	Kind          string     `json:"kind"` // "value" or "tombstone"
	Version       int64      `json:"version"`
	VersionTime   time.Time  `json:"version_time"`
	Expires       time.Time  `json:"expires"`
	FailSafe      bool       `json:"fail_safe"`
	StoreExpires  *time.Time `json:"store_expires,omitempty"`
	EagerRefresh  *time.Time `json:"eager_refresh,omitempty"`
	Tags          []string   `json:"tags"`
	ETag          string     `json:"etag,omitempty"`
	LastModified  *time.Time `json:"last_modified,omitempty"`
	EnvelopeBytes int        `json:"envelope_bytes"`
	ValueBytes    int        `json:"value_bytes"`
	ValueText     *string    `json:"value_text,omitempty"`
	ValueHex      string     `json:"value_hex,omitempty"`
	ValueCut      bool       `json:"value_truncated,omitempty"`
}

func report(cache, key, storeKey string, env l2.Envelope, size int, now time.Time, maxValue int) inspectReport {
	r := inspectReport{
		Cache: cache, Key: key, StoreKey: storeKey, Kind: "value",
		Version: env.Created, VersionTime: unixTime(env.Created), Expires: unixTime(env.Expires),
		FailSafe: env.Flags&l2.FlagFailSafe != 0, Tags: env.Tags, ETag: env.ETag,
		EnvelopeBytes: size, ValueBytes: len(env.Value),
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	if env.Flags&l2.FlagTombstone != 0 {
		r.Kind = "tombstone"
	}
	if env.EagerRefresh != 0 {
		t := unixTime(env.EagerRefresh)
		r.EagerRefresh = &t
	}
	if env.LastModified != 0 {
		t := unixTime(env.LastModified)
		r.LastModified = &t
	}
	v := env.Value
	if len(v) > maxValue {
		v, r.ValueCut = v[:maxValue], true
	}
	if utf8.Valid(v) && printable(string(v)) {
		s := string(v)
		r.ValueText = &s
	} else {
		r.ValueHex = hex.EncodeToString(v)
	}
	return r
}

func (r inspectReport) print(w io.Writer, now time.Time) {
	row := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-14s %s\n", name, fmt.Sprintf(format, args...))
	}
	if r.Cache != "" {
		row("cache", "%s", strconv.Quote(r.Cache))
	}
	row("key", "%s", strconv.Quote(r.Key))
	row("store key", "%s", strconv.Quote(r.StoreKey))
	if r.Kind == "tombstone" {
		row("kind", "tombstone (removed or expired at its version: readers miss, older writes are refused)")
	} else {
		row("kind", "value")
	}
	row("version", "%d (%s)", r.Version, when(r.VersionTime, now))
	row("expires", "%s", when(r.Expires, now))
	if r.FailSafe {
		row("fail-safe", "yes: may be served stale after expires, until the store expiry")
	} else {
		row("fail-safe", "no")
	}
	if r.StoreExpires != nil {
		row("store expiry", "%s", when(*r.StoreExpires, now))
	} else {
		row("store expiry", "unknown (this store does not tell)")
	}
	if r.EagerRefresh != nil {
		row("eager refresh", "%s", when(*r.EagerRefresh, now))
	} else {
		row("eager refresh", "never")
	}
	if len(r.Tags) == 0 {
		row("tags", "none")
	} else {
		q := make([]string, len(r.Tags))
		for i, t := range r.Tags {
			q[i] = strconv.Quote(t)
		}
		row("tags", "%s", strings.Join(q, ", "))
	}
	if r.ETag != "" {
		row("etag", "%s", strconv.Quote(r.ETag))
	} else {
		row("etag", "none")
	}
	if r.LastModified != nil {
		row("last modified", "%s", when(*r.LastModified, now))
	} else {
		row("last modified", "none")
	}
	row("size", "%d bytes (value %d bytes)", r.EnvelopeBytes, r.ValueBytes)
	cut := ""
	if r.ValueCut {
		cut = " (truncated: -max-value)"
	}
	switch {
	case r.Kind == "tombstone":
	case r.ValueText != nil:
		row("value", "%s%s", *r.ValueText, cut)
	default:
		row("value", "hex %s%s", r.ValueHex, cut)
	}
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// when formats t with how far it is from now.
func when(t time.Time, now time.Time) string {
	d := t.Sub(now).Round(time.Millisecond)
	if d >= 0 {
		return fmt.Sprintf("%s, in %s", t.Format(time.RFC3339Nano), d)
	}
	return fmt.Sprintf("%s, %s ago", t.Format(time.RFC3339Nano), -d)
}

// printable reports whether s holds no control characters but tabs and
// newlines, so that it can be printed as is.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// storeTTL returns how long the store keeps storeKey, for the stores that
// tell: Redis (redis://, rediss://), asked with PTTL on a client of its own
// made from the same URL. For other stores ok is false.
func storeTTL(ctx context.Context, rawURL, storeKey string) (ttl time.Duration, ok bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return 0, false, nil
	}
	q := u.Query()
	redisKey := q.Get("key_prefix") + storeKey
	q.Del("key_prefix")
	u.RawQuery = q.Encode()
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return 0, false, err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	d, err := c.PTTL(ctx, redisKey).Result()
	switch {
	case err != nil:
		return 0, false, err
	case d < 0: // -1: no TTL, -2: gone since the read
		return 0, false, nil
	}
	return d, true, nil
}
