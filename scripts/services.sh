#!/usr/bin/env bash
# Make sure the services the tests need are running on loopback: PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379). Starts them when stopped and installs them with apt-get when missing (needs root).
# Idempotent: does nothing when both already answer.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_install() {
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for <seconds> <command...>
  local seconds=$1; shift
  for _ in $(seq 1 $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && pg_up; then log "PostgreSQL is running"; else
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -z "$version" ]; then log "no PostgreSQL cluster found"; exit 1; fi
    log "starting PostgreSQL $version"
    # PostgreSQL refuses to run as root; pg_ctlcluster switches to the cluster's owner.
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || \
      as_root runuser -u postgres -- pg_ctlcluster "$version" main start
    wait_for 30 pg_up || { log "PostgreSQL did not start"; exit 1; }
  fi
  # Tests connect as postgres over TCP. A fresh Debian install asks for a password there: give the test user
  # the password the tests use, unless the connection already works (trust authentication).
  if ! PGCONNECT_TIMEOUT=5 psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -w -Atqc 'SELECT 1' \
      >/dev/null 2>&1; then
    if ! PGPASSWORD=postgres psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' \
        >/dev/null 2>&1; then
      log "setting the postgres user's password for local tests"
      as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'"
    fi
  fi
}

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis_up; then log "Redis is running"; return; fi
  if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server; fi
  log "starting Redis"
  mkdir -p /tmp/posomni-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/posomni-redis --logfile /tmp/posomni-redis/redis.log
  wait_for 15 redis_up || { log "Redis did not start"; exit 1; }
}

ensure_postgres
ensure_redis
