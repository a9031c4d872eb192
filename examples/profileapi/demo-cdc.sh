#!/usr/bin/env bash
# The profile API demo with a write nobody cached: three instances of
# examples/profileapi on 127.0.0.1:8081-8083 with change data capture on
# (-cdc), over a private PostgreSQL (wal_level=logical) this script starts
# and stops. Every instance caches profile 42; a plain `psql -c "UPDATE ..."`
# revokes its can_delete_orders permission, bypassing the service; instances
# 2 and 3 must serve the new row within the staleness bound (5s), not their
# cached copy. Then the instance holding the replication slot is killed
# (kill -9) during a burst of updates to 100 cached profiles; a standby takes
# over and every update must be served by the two survivors. Exits 1 on
# any failure.
#
#   examples/profileapi/demo-cdc.sh        # Redis (127.0.0.1:6379) as L2 and backplane
#   CACHE_BACKPLANE_URL=nats://127.0.0.1:4222 examples/profileapi/demo-cdc.sh
#
# Environment (all optional), as demo.sh:
#   CACHE_L2_URL         default redis://127.0.0.1:6379 ("none": no L2)
#   CACHE_BACKPLANE_URL  default redis://127.0.0.1:6379; or nats://127.0.0.1:4222,
#                        amqp://guest:guest@127.0.0.1:5672
#   DEMO_PORTS           default "8081 8082 8083"
#   PG_BIN               PostgreSQL's bin directory (default: the newest /usr/lib/postgresql/*/bin)
# Needs Go, curl, psql, PostgreSQL's initdb and postgres (run as the postgres
# user when this script runs as root), and the servers the URLs name.
set -euo pipefail

cd "$(dirname "$0")/../.."
. examples/profileapi/demo-lib.sh
export CACHE_L2_URL="${CACHE_L2_URL:-redis://127.0.0.1:6379}"
export CACHE_BACKPLANE_URL="${CACHE_BACKPLANE_URL:-redis://127.0.0.1:6379}"
read -r -a ports <<<"${DEMO_PORTS:-8081 8082 8083}"
run="$(date +%s)-$$"
export CACHE_NAME="profileapi-cdc-demo-$run"
export CACHE_KEY_PREFIX="profileapi-cdc-demo:$run:"
export PROFILES_TABLE="profiles_cdc_${run//-/_}"
export CACHE_CDC=on
bound=5 # seconds: core.DefaultBackplaneStalenessBound

work="$(mktemp -d)"
chmod 755 "$work"
pids=()
pg_pid=""
status=1
cleanup() {
  stop_instances
  if [ "$status" -ne 0 ]; then
    for f in "$work"/instance-*.log "$work"/postgres.log; do
      [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 20 "$f"; }
    done
  fi
  if [ -n "$pg_pid" ]; then
    kill -INT "$pg_pid" 2>/dev/null || true # fast shutdown
    for _ in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a free loopback port
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# --- a private PostgreSQL with wal_level=logical (never the shared 5432)
bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$bin/initdb" ] || { echo "demo: no initdb in '$bin'; set PG_BIN" >&2; exit 1; }
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --) # initdb and postgres refuse root
  chown postgres "$work"
fi
pg_port="$(free_port)"
echo "== starting a private PostgreSQL (wal_level=logical) on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$bin/initdb" -D "$work/pgdata" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$bin/postgres" -D "$work/pgdata" -c port="$pg_port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$work" -c wal_level=logical -c wal_sender_timeout=5s -c fsync=off \
  >"$work/postgres.log" 2>&1 &
runner=$!
for _ in $(seq 300); do
  if pg_isready -q -h 127.0.0.1 -p "$pg_port"; then break; fi
  kill -0 "$runner" 2>/dev/null || { echo "demo: postgres exited" >&2; exit 1; }
  sleep 0.1
done
pg_pid="$(head -n 1 "$work/pgdata/postmaster.pid")"
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
sql() { psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }

build_instances
echo "== starting 3 instances with CDC: L2 $(hide "$CACHE_L2_URL"), backplane $(hide "$CACHE_BACKPLANE_URL"), table $PROFILES_TABLE"
for i in 1 2 3; do start "$i" "${ports[$i - 1]}"; done

# holder: the live instance whose consumer holds the slot (from the logs:
# a standby logs nothing until it takes the slot).
dead=""
holder() {
  for i in 1 2 3; do
    [ "$i" = "$dead" ] && continue
    if grep -q 'this consumer holds the slot' "$work/instance-$i.log" 2>/dev/null; then echo "$i"; return; fi
  done
}
for _ in $(seq 100); do [ -n "$(holder)" ] && break; sleep 0.1; done
h="$(holder)"
[ -n "$h" ] || { echo "demo: no instance took the replication slot" >&2; exit 1; }
echo "   instance-$h holds the replication slot; the others stand by"

get() { curl -fsS --max-time 5 "http://127.0.0.1:${ports[$1 - 1]}/profile/$2"; }
now_ms() { date +%s%3N; }

echo "== GET /profile/42 on every instance, twice: the first read fills the caches, the second is a hit"
for round in 1 2; do
  for i in 1 2 3; do show "$(get "$i" 42)"; done
done
before="$(field "$(get 1 42)" can_delete_orders)"
if [ "$before" = true ]; then after=false; else after=true; fi

echo "== psql: UPDATE $PROFILES_TABLE SET can_delete_orders = $after ... WHERE id = 42 (no instance is told)"
new_version="$(sql -At -c "UPDATE $PROFILES_TABLE SET can_delete_orders = $after, version = version + 1,
  updated_at = (extract(epoch from now()) * 1000)::bigint WHERE id = 42 RETURNING version")"
t0="$(now_ms)"

echo "== GET /profile/42 on instances 2 and 3, polled until they serve version $new_version (at most ${bound}s)"
stale=0
for i in 2 3; do
  while :; do
    r="$(get "$i" 42)"
    t1="$(now_ms)"
    if [ "$(field "$r" can_delete_orders)" = "$after" ] && [ "$(field "$r" version)" = "$new_version" ]; then
      show "$r"
      echo "      answered $((t1 - t0)) ms after psql returned (curl's start included)"
      break
    fi
    if [ $(( $(now_ms) - t0 )) -gt $((bound * 1000)) ]; then
      show "$r"
      echo "   FAIL: instance-$i still serves the old profile ${bound}s after the UPDATE" >&2
      stale=1
      break
    fi
    sleep 0.01
  done
done
[ "$stale" -eq 0 ] || { echo "demo: FAILED: an instance served the old row after the database changed" >&2; exit 1; }

n=100
echo "== $n more profiles (1001-$((1000 + n))), cached on every instance"
sql -c "INSERT INTO $PROFILES_TABLE SELECT i, 'user ' || i, 'u' || i || '@example.com', 'viewer', false, false, 1,
  (extract(epoch from now()) * 1000)::bigint FROM generate_series(1001, $((1000 + n))) i"
for i in 1 2 3; do
  for id in $(seq 1001 $((1000 + n))); do get "$i" "$id" >/dev/null; done
done

h="$(holder)"
echo "== a burst of $n UPDATEs (one transaction each, 20 ms apart); kill -9 instance-$h, which holds the slot, during it"
{
  for id in $(seq 1001 $((1000 + n))); do
    echo "UPDATE $PROFILES_TABLE SET role = 'support', version = version + 1 WHERE id = $id;"
    echo "SELECT pg_sleep(0.02);"
  done
} >"$work/burst.sql"
sql -o /dev/null -f "$work/burst.sql" &
burst=$!
sleep 0.5
kill -KILL "${pids[$h - 1]}"
wait "${pids[$h - 1]}" 2>/dev/null || true
dead="$h"
echo "   killed instance-$h (pid ${pids[$h - 1]}) at $(date +%T.%3N)"
wait "$burst"
burst_end="$(now_ms)"
echo "   burst committed at $(date +%T.%3N)"

survivors=()
for i in 1 2 3; do [ "$i" -ne "$h" ] && survivors+=("$i"); done
for _ in $(seq 100); do
  nh="$(holder)"
  [ -n "$nh" ] && [ "$nh" -ne "$h" ] && break
  sleep 0.1
done
[ -n "$nh" ] && [ "$nh" -ne "$h" ] || { echo "demo: FAILED: no standby took the slot" >&2; exit 1; }
echo "   instance-$nh took the slot over: $(grep 'this consumer holds the slot' "$work/instance-$nh.log" | tail -n 1 | sed 's/.*time=\([^ ]*\).*/\1/')"

echo "== every update served by instances ${survivors[*]} (within ${bound}s + takeover)"
limit=$(( (bound + 2) * 1000 ))
for i in "${survivors[@]}"; do
  ok=0
  for id in $(seq 1001 $((1000 + n))); do
    while :; do
      r="$(get "$i" "$id")"
      if [ "$(field "$r" role)" = support ] && [ "$(field "$r" version)" = 2 ]; then ok=$((ok + 1)); break; fi
      if [ $(( $(now_ms) - burst_end )) -gt "$limit" ]; then
        echo "   FAIL: instance-$i serves profile $id at version $(field "$r" version) (role $(field "$r" role))" >&2
        break
      fi
      sleep 0.01
    done
  done
  echo "   instance-$i: $ok of $n updates served"
  [ "$ok" -eq "$n" ] || { echo "demo: FAILED: an update was lost" >&2; exit 1; }
done

echo "== OK: a plain SQL UPDATE reached every instance, and after the slot holder was killed a standby applied every update"
status=0
