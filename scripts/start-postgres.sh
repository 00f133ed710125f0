#!/usr/bin/env bash
# Starts a private PostgreSQL server for the tests and prints its URL on the
# last line of stdout:
#
#   export OUTPOST_TEST_POSTGRES_URL="$(scripts/start-postgres.sh)"
#
# Why a private cluster instead of Debian's system service: it needs no
# systemd, no edits to the system's pg_hba.conf, and cannot collide with a
# PostgreSQL the developer already runs on 5432. It listens on 127.0.0.1 only,
# with trust authentication, and durability switched off (fsync) because test
# databases are disposable and fsync dominates their run time.
#
# Idempotent: a server already answering on the port is reused; a cluster left
# stopped (machine restarted) is started again.
#
#   scripts/start-postgres.sh        start (or reuse) and print the URL
#   scripts/start-postgres.sh stop   stop the private server
set -euo pipefail

PORT="${OUTPOST_TEST_POSTGRES_PORT:-55432}"
BASE_DIR="${OUTPOST_TEST_PGBASE:-/tmp/outpost-pg}"
DATA_DIR="$BASE_DIR/data"
SOCKET_DIR="$BASE_DIR/socket"
LOG_FILE="$BASE_DIR/postgres.log"
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

log() { echo "start-postgres: $*" >&2; }

# Debian installs server binaries per major version, outside PATH.
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
  if command -v initdb >/dev/null 2>&1; then
    PG_BIN="$(dirname "$(command -v initdb)")"
  else
    log "error: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH)."
    log "On Debian: apt-get install -y postgresql"
    exit 1
  fi
fi
PG_MAJOR="$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')"

# The server refuses to run as root, so as root we run it as Debian's
# `postgres` user; a developer runs it as themselves.
as_server_user() {
  if [[ "$(id -u)" == 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

is_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres; }

if [[ "${1:-start}" == stop ]]; then
  if [[ -f "$DATA_DIR/postmaster.pid" ]]; then
    as_server_user "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2
  else
    log "not running (no $DATA_DIR/postmaster.pid)"
  fi
  exit 0
fi

if is_ready; then
  log "reusing the server already answering on 127.0.0.1:$PORT"
  echo "$URL"
  exit 0
fi

mkdir -p "$BASE_DIR"
if [[ "$(id -u)" == 0 ]]; then chown postgres:postgres "$BASE_DIR"; fi
chmod 0700 "$BASE_DIR"

# A data dir without PG_VERSION is a half-finished initdb; one from another
# major version cannot be started by these binaries. Both are disposable.
if [[ -d "$DATA_DIR" && "$(cat "$DATA_DIR/PG_VERSION" 2>/dev/null || true)" != "$PG_MAJOR" ]]; then
  log "removing unusable data directory $DATA_DIR"
  rm -rf "$DATA_DIR"
fi

if [[ ! -d "$DATA_DIR" ]]; then
  log "initdb (PostgreSQL $PG_MAJOR) into $DATA_DIR"
  as_server_user mkdir -p "$SOCKET_DIR"
  as_server_user "$PG_BIN/initdb" -D "$DATA_DIR" --username=postgres \
    --auth-local=trust --auth-host=trust --encoding=UTF8 --no-locale >/dev/null
  cat >>"$DATA_DIR/postgresql.conf" <<EOF

# Outpost test server (scripts/start-postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKET_DIR'
# Parallel test files each start servers with their own connection pools.
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi

# A server killed with its session (as happens before CI runs) leaves
# postmaster.pid behind. PostgreSQL refuses to start while the PID in it is
# alive, and by then that PID may belong to any other process, or still be a
# zombie. Only a live postgres on this data dir is a real server: stop it (it
# does not answer on our port, or we would have reused it); otherwise the
# file is stale.
clear_stale_lock_file() {
  local lock_file="$DATA_DIR/postmaster.pid" pid stat cmdline
  [[ -f "$lock_file" ]] || return 0
  pid="$(head -n 1 "$lock_file")"
  stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
  cmdline="$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)"
  if [[ -n "$stat" && ! "$stat" =~ ^[0-9]+\ \(.*\)\ Z && "$cmdline" == *postgres*"$DATA_DIR"* ]]; then
    log "PostgreSQL (pid $pid) runs on $DATA_DIR but does not answer on 127.0.0.1:$PORT: stopping it"
    as_server_user "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >&2 || kill -KILL "$pid" 2>/dev/null || true
  fi
  if [[ -f "$lock_file" ]]; then
    log "removing stale $lock_file (pid $pid is not a running server)"
    rm -f "$lock_file"
  fi
}

log "starting on 127.0.0.1:$PORT (log: $LOG_FILE)"
as_server_user mkdir -p "$SOCKET_DIR"
clear_stale_lock_file
# The backends of a server killed moments ago hold its shared memory until
# they notice; the start then fails once or twice, so it is retried.
started=false
for attempt in 1 2 3 4 5; do
  # The port is given at start, not in postgresql.conf, so a data dir made
  # for one OUTPOST_TEST_POSTGRES_PORT serves another.
  if as_server_user "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -o "-p $PORT" -w -t 60 start >&2; then
    started=true
    break
  fi
  log "start attempt $attempt failed; retrying"
  sleep 1
  clear_stale_lock_file
done
if [[ "$started" != true ]]; then
  log "error: PostgreSQL did not start; last lines of $LOG_FILE:"
  tail -n 30 "$LOG_FILE" >&2 || true
  exit 1
fi
if ! is_ready; then
  log "error: PostgreSQL started but does not answer on 127.0.0.1:$PORT"
  exit 1
fi
echo "$URL"
