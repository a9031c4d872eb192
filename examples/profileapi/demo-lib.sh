# Shell functions demo.sh and demo-cdc.sh share; sourced, not run. They use
# the caller's $work (a temporary directory), ports (the instances' ports)
# and pids (the instances started), and CACHE_BACKPLANE_URL.

# build_instances: builds examples/profileapi into $work (with the build tags
# in $PROFILEAPI_TAGS, if any: sqlite for a SQLite file) and checks that the
# instances' ports are free.
build_instances() {
  echo "== building examples/profileapi${PROFILEAPI_TAGS:+ with -tags $PROFILEAPI_TAGS}"
  go build ${PROFILEAPI_TAGS:+-tags "$PROFILEAPI_TAGS"} -o "$work/profileapi" ./examples/profileapi
  local port
  for port in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "demo: port $port is in use; set DEMO_PORTS to three free ports" >&2
      exit 1
    fi
  done
}

# start N PORT: starts instance N and waits (at most 30s) until it answers,
# with its backplane subscription live when it has a backplane.
start() {
  ADDR="127.0.0.1:$2" INSTANCE="instance-$1" "$work/profileapi" >"$work/instance-$1.log" 2>&1 &
  pids+=($!)
  local want='"backplane_connected": true'
  [ "$CACHE_BACKPLANE_URL" = none ] && want='"backplane": false'
  for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$2/healthz" 2>/dev/null | grep -q "$want"; then return 0; fi
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo: instance $1 exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "demo: instance $1 did not answer on port $2 within 30s" >&2
  exit 1
}

# stop_instances: SIGTERM to every instance, SIGKILL to those still up 5s later.
stop_instances() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

hide() { sed 's#//[^/@]*@#//***@#' <<<"$1"; } # no passwords on the screen

# field JSON NAME: the value of "NAME" in the service's indented JSON.
field() { sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" <<<"$1" | head -n 1; }

# show JSON: one line about what an instance answered.
show() {
  printf '   %s: role=%-7s can_delete_orders=%-5s version=%s  (from %s)\n' "$(field "$1" instance)" \
    "$(field "$1" role)" "$(field "$1" can_delete_orders)" "$(field "$1" version)" "$(field "$1" source)"
}
