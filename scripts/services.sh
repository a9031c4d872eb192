#!/usr/bin/env bash
# Makes sure the servers the adapter tests talk to are up on this machine
# (Redis 6379, NATS with JetStream 4222, RabbitMQ 5672, and PostgreSQL 5432
# for examples/profileapi), starting any that is
# down the same way the machine starts them, and waits until each accepts
# connections. Addresses can be overridden with STRATA_REDIS_ADDR,
# STRATA_NATS_URL and STRATA_AMQP_URL; then this script only checks them.
set -u

up() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_for() { # name host port seconds
  local i
  for ((i = 0; i < $4 * 5; i++)); do
    up "$2" "$3" && { echo "services: $1 up on $2:$3"; return 0; }
    sleep 0.2
  done
  echo "services: $1 did not come up on $2:$3 within $4s" >&2
  return 1
}

status=0
if ! up 127.0.0.1 6379; then
  echo "services: starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! up 127.0.0.1 4222; then
  echo "services: starting nats"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
if ! up 127.0.0.1 5672; then
  echo "services: starting rabbitmq"
  rabbitmq-server -detached || true
fi
if ! up 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null; then
  echo "services: starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
wait_for redis 127.0.0.1 6379 20 || status=1
wait_for nats 127.0.0.1 4222 20 || status=1
wait_for rabbitmq 127.0.0.1 5672 90 || status=1
wait_for postgresql 127.0.0.1 5432 30 || status=1
exit $status
