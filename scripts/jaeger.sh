#!/usr/bin/env bash
# Jaeger v2 for local development and examples/jaeger's end-to-end test.
#
#   scripts/jaeger.sh [start]   build the binary if it is not cached, start
#                               Jaeger unless it already answers, and wait
#                               until its query API answers
#   scripts/jaeger.sh build     only build (and cache) the binary
#   scripts/jaeger.sh stop      stop the Jaeger this script started
#   scripts/jaeger.sh status    exit 0 if the query API answers
#   scripts/jaeger.sh path      print the cached binary's path
#
# Jaeger 2.13 is the Go module github.com/jaegertracing/jaeger v1.76.0. It
# cannot be `go install`ed (its go.mod has a replace line), and its
# cmd/jaeger main package imports internal packages of the jaeger module, so
# no wrapper module outside that path may import them. The script therefore
# copies the module's own source (go.mod with its replace line, go.sum) from
# the module cache into a temporary directory and builds ./cmd/jaeger there.
# That takes about 8 minutes (13 measured on a busy 2-core machine) and
# 2.2 GB the first time; the binary is cached
# outside the repository, at ${STRATA_CACHE_DIR:-$HOME/.cache/strata}/jaeger-2.13,
# and reused. The web UI assets are not in the module (the UI shows a
# placeholder page); the JSON API (/api/services, /api/traces) works. For the
# full UI, run the official jaegertracing/jaeger container image instead
# (docs/observability.md).
#
# Endpoints (scripts/jaeger-config.yaml), all on 127.0.0.1: OTLP gRPC 4317,
# OTLP HTTP 4318, query HTTP 16686 (API and UI), query gRPC 16685. Storage
# is in memory: traces are lost when Jaeger stops.
set -euo pipefail

JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=v1.76.0 # Jaeger 2.13
CACHE_DIR=${STRATA_CACHE_DIR:-$HOME/.cache/strata}
BIN=$CACHE_DIR/jaeger-2.13
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONFIG=${JAEGER_CONFIG:-$HERE/jaeger-config.yaml}
RUN_DIR=$CACHE_DIR/jaeger-run
PIDFILE=$RUN_DIR/jaeger.pid
LOG=$RUN_DIR/jaeger.log
API=http://127.0.0.1:16686/api/services
GO=${GO:-go}

log() { echo "jaeger.sh: $*" >&2; }

answers() { curl -fsS -m 2 "$API" >/dev/null 2>&1; }

build() {
	if [[ -x $BIN ]]; then
		return 0
	fi
	mkdir -p "$CACHE_DIR"
	# One build at a time, even when several tests start the script.
	exec 9>"$CACHE_DIR/jaeger-build.lock"
	flock 9
	if [[ -x $BIN ]]; then
		return 0
	fi
	log "building Jaeger 2.13 ($JAEGER_MODULE@$JAEGER_VERSION) into $BIN: about 8 minutes (13 on a busy 2-core machine) and 2.2 GB, once"
	local started dir tmp
	started=$(date +%s)
	BUILD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-jaeger-build.XXXXXX")
	tmp=$BUILD_TMP
	trap 'chmod -R u+w "$BUILD_TMP" 2>/dev/null; rm -rf "$BUILD_TMP"' EXIT
	dir=$(cd "$tmp" && GOFLAGS=-mod=mod "$GO" mod download -json "$JAEGER_MODULE@$JAEGER_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
	if [[ -z $dir || ! -f $dir/go.mod ]]; then
		log "could not download $JAEGER_MODULE@$JAEGER_VERSION"
		return 1
	fi
	cp -r "$dir" "$tmp/jaeger"
	chmod -R u+w "$tmp/jaeger"
	# The module's own go.mod keeps its replace line
	# (github.com/Shopify/sarama => v1.33.0) and its go.sum; -mod=mod lets
	# the go command add a checksum the published go.sum may lack.
	(
		cd "$tmp/jaeger"
		grep -q '^replace github.com/Shopify/sarama' go.mod
		GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local nice -n 10 "$GO" build -trimpath \
			-ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v2.13.0" \
			-o "$BIN.tmp" ./cmd/jaeger
	)
	mv "$BIN.tmp" "$BIN"
	log "built $BIN in $(($(date +%s) - started)) s"
}

start() {
	if answers; then
		log "Jaeger already answers at $API"
		return 0
	fi
	build
	mkdir -p "$RUN_DIR"
	log "starting $BIN with $CONFIG (log: $LOG)"
	nohup "$BIN" --config "$CONFIG" >"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 120); do
		if answers; then
			log "Jaeger is up: UI and API at http://127.0.0.1:16686, OTLP at 127.0.0.1:4317 (gRPC) and 127.0.0.1:4318 (HTTP)"
			return 0
		fi
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
			log "Jaeger exited; last lines of $LOG:"
			tail -n 30 "$LOG" >&2
			return 1
		fi
		sleep 0.5
	done
	log "Jaeger did not answer at $API within 60 s; see $LOG"
	return 1
}

stop() {
	if [[ -f $PIDFILE ]]; then
		local pid
		pid=$(cat "$PIDFILE")
		if kill "$pid" 2>/dev/null; then
			for _ in $(seq 1 150); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				kill -9 "$pid" 2>/dev/null || true
				log "killed Jaeger (pid $pid): it did not stop within 15 s"
			else
				log "stopped Jaeger (pid $pid)"
			fi
		fi
		rm -f "$PIDFILE"
	fi
}

case "${1:-start}" in
start) start ;;
build) build ;;
stop) stop ;;
status) answers ;;
path) echo "$BIN" ;;
*)
	echo "usage: $0 [start|build|stop|status|path]" >&2
	exit 2
	;;
esac
