#!/usr/bin/env bash
# The profile API demo: three instances of examples/profileapi on
# 127.0.0.1:8081-8083, no load balancer, sharing one database and strata's
# L2 and backplane. Every instance caches profile 42; instance 1 revokes its
# can_delete_orders permission; instances 2 and 3 must serve the new profile
# at once, not their cached copy. Exits non-zero if one serves the old value.
#
#   examples/profileapi/demo.sh              # Redis (127.0.0.1:6379) as L2 and backplane, and
#                                            # the local PostgreSQL in a table of this run's own:
#                                            # postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#   examples/profileapi/demo.sh --postgres postgres://user:pass@db:5432/app   # another PostgreSQL
#   examples/profileapi/demo.sh --sqlite     # a SQLite file in a temporary directory instead;
#                                            # builds with -tags sqlite (the first build takes minutes)
#   examples/profileapi/demo.sh --help
#
# Environment (all optional):
#   CACHE_L2_URL         default redis://127.0.0.1:6379 ("none": no L2)
#   CACHE_BACKPLANE_URL  default redis://127.0.0.1:6379; or nats://127.0.0.1:4222,
#                        amqp://guest:guest@127.0.0.1:5672 ("none": see the problem)
#   DATABASE_URL         the PostgreSQL (what --postgres URL sets); default
#                        $STRATA_POSTGRES_URL, else the local one above
#   DEMO_PORTS           default "8081 8082 8083"
# Each instance is started and must answer /healthz, with its backplane
# subscription live (the service waits for core's Cache.Ready before it
# serves), before the next one starts; the reads start after all three.
# Needs Go, curl, the servers the URLs name, and psql to drop the table at the end.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
sqlite=0
while [ $# -gt 0 ]; do
  case "$1" in
  -h | --help) usage; exit 0 ;;
  --postgres)
    if [ $# -gt 1 ] && [[ $2 == postgres://* || $2 == postgresql://* ]]; then
      export DATABASE_URL="$2"; shift
    fi
    sqlite=0
    ;;
  --sqlite) sqlite=1 ;;
  *) echo "demo: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/../.."
. examples/profileapi/demo-lib.sh
export CACHE_L2_URL="${CACHE_L2_URL:-redis://127.0.0.1:6379}"
export CACHE_BACKPLANE_URL="${CACHE_BACKPLANE_URL:-redis://127.0.0.1:6379}"
read -r -a ports <<<"${DEMO_PORTS:-8081 8082 8083}"
run="$(date +%s)-$$"
# Names of this run only: a shared Redis keeps other runs' entries.
export CACHE_NAME="profileapi-demo-$run"
export CACHE_KEY_PREFIX="profileapi-demo:$run:"

work="$(mktemp -d)"
pids=()
status=1
cleanup() {
  stop_instances
  if [ "$status" -ne 0 ]; then
    for f in "$work"/instance-*.log; do
      [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 20 "$f"; }
    done
  fi
  if [ -n "${PROFILES_TABLE:-}" ] && [ -n "${DATABASE_URL:-}" ] && command -v psql >/dev/null; then
    psql -q "$DATABASE_URL" -c "DROP TABLE IF EXISTS $PROFILES_TABLE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$sqlite" -eq 1 ]; then
  # Without a database URL, a binary built with -tags sqlite uses the file.
  unset DATABASE_URL
  export SQLITE_PATH="$work/profiles.db" PROFILEAPI_TAGS=sqlite
  db="SQLite file $SQLITE_PATH"
else
  export DATABASE_URL="${DATABASE_URL:-${STRATA_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}"
  # A table of this run's own (dropped at the end when psql is there), so
  # profile 42 starts as seeded and other runs' tables are left alone.
  export PROFILES_TABLE="profileapi_demo_${run//-/_}"
  db="PostgreSQL $(hide "$DATABASE_URL"), table $PROFILES_TABLE"
fi

build_instances
echo "== starting 3 instances: L2 $(hide "$CACHE_L2_URL"), backplane $(hide "$CACHE_BACKPLANE_URL"), $db"
# One after the other: the first creates and seeds the table.
for i in 1 2 3; do start "$i" "${ports[$i - 1]}"; done

get() { curl -fsS --max-time 5 "http://127.0.0.1:${ports[$1 - 1]}/profile/42"; }

echo "== GET /profile/42 on every instance, twice: the first read fills the caches, the second is a hit"
for round in 1 2; do
  for i in 1 2 3; do show "$(get "$i")"; done
done
before="$(field "$(get 1)" can_delete_orders)"
old_version="$(field "$(get 1)" version)"
if [ "$before" = true ]; then after=false; else after=true; fi

echo "== POST /profile/42 on instance 1: can_delete_orders -> $after"
resp="$(curl -fsS --max-time 5 -X POST -H 'Content-Type: application/json' \
  -d "{\"can_delete_orders\": $after}" "http://127.0.0.1:${ports[0]}/profile/42")"
show "$resp"
new_version="$(field "$resp" version)"

echo "== GET /profile/42 on instances 2 and 3, right after the update"
stale=0
for i in 2 3; do
  r="$(get "$i")"
  show "$r"
  if [ "$(field "$r" can_delete_orders)" != "$after" ] || [ "$(field "$r" version)" != "$new_version" ]; then
    echo "   FAIL: instance-$i serves the old profile (version $old_version)" >&2
    stale=1
  fi
done
echo "== and once more (now from their memory)"
for i in 2 3; do show "$(get "$i")"; done

if [ "$stale" -ne 0 ]; then
  echo "demo: FAILED: an instance served the old value after the update" >&2
  exit 1
fi
echo "== OK: instances 2 and 3 served version $new_version (can_delete_orders=$after) right after instance 1's update"
status=0
