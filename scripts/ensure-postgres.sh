#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the PostgreSQL store tests, at 127.0.0.1:${TORK_TEST_PG_PORT:-55432}
# with role tork (password tork, may create databases) and database tork_test (TORK_TEST_POSTGRES_URL's default).
# As root on Debian: installs Debian's postgresql if absent, makes a throw-away cluster in $DATA (trust auth on
# loopback only) and starts it in the background. Not root and none answering: says so; the tests then skip
# (in CI, CI=true, they fail instead).
set -euo pipefail
PORT="${TORK_TEST_PG_PORT:-55432}"
DATA="${TORK_TEST_PG_DATA:-/var/lib/tork-ray-pg}"

answers() { pg_isready -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; }

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if ! answers; then
  if [ "$(id -u)" != 0 ]; then
    echo "note: no PostgreSQL answers on 127.0.0.1:$PORT; the PostgreSQL store tests will skip (run as root to set one up)"
    exit 0
  fi
  if [ -z "$(bin_dir)" ] || ! command -v pg_isready >/dev/null 2>&1; then
    echo "installing Debian's postgresql ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
  fi
  BIN="$(bin_dir)"
  if [ ! -s "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA"
    su postgres -s /bin/sh -c "'$BIN/initdb' -D '$DATA' -A trust -U postgres >/dev/null"
  fi
  echo "starting PostgreSQL on 127.0.0.1:$PORT (data and log in $DATA) ..."
  su postgres -s /bin/sh -c "'$BIN/pg_ctl' -D '$DATA' -l '$DATA/server.log' -w -t 60 \
    -o \"-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null"
fi
if [ "$(id -u)" = 0 ] || answers; then
  psql_() { psql -q -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
  if [ "$(psql_ -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'tork'" 2>/dev/null)" != 1 ]; then
    psql_ -c "CREATE ROLE tork LOGIN PASSWORD 'tork'" 2>/dev/null || true
  fi
  # CREATEDB: each test run makes (and drops) a database of its own, so runs never see each other's rows.
  psql_ -c "ALTER ROLE tork CREATEDB" 2>/dev/null || true
  # Its drop (DROP DATABASE ... WITH (FORCE)) ends the sessions still on the database; one of them may be an
  # autovacuum worker, which only a member of pg_signal_backend may end (a teardown failed so under load).
  psql_ -c "GRANT pg_signal_backend TO tork" 2>/dev/null || true
  if [ "$(psql_ -tAc "SELECT 1 FROM pg_database WHERE datname = 'tork_test'" 2>/dev/null)" != 1 ]; then
    psql_ -c "CREATE DATABASE tork_test OWNER tork" 2>/dev/null || true
  fi
fi
