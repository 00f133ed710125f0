#!/usr/bin/env bash
# Starts moto's server, an emulator of the AWS APIs, on 127.0.0.1 for the
# tests of what Outpost does with AWS (the pool token read from Secrets
# Manager). moto comes from PyPI into a virtualenv under ~/.cache/outpost
# (once, about 3 minutes); the server keeps running in its own session, like
# PostgreSQL. Prints the endpoint URL as its last line.
#
#   bash scripts/start-moto.sh            # start (or find running) on port 15000
#   OUTPOST_MOTO_PORT=15001 bash scripts/start-moto.sh
set -euo pipefail

MOTO_VERSION=5.2.5
PORT="${OUTPOST_MOTO_PORT:-15000}"
VENV="${OUTPOST_MOTO_VENV:-$HOME/.cache/outpost/moto-$MOTO_VERSION}"
LOG="${OUTPOST_MOTO_LOG:-/tmp/outpost-moto.log}"
URL="http://127.0.0.1:$PORT"
started=$SECONDS
log() { echo "moto: [$((SECONDS - started)) s] $*" >&2; }

# Python's urllib rather than curl: python3 is here for the venv anyway.
answers() { python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$URL/moto-api/" >/dev/null 2>&1; }

if answers; then
  log "already running at $URL"
  echo "$URL"
  exit 0
fi

# A venv's scripts name their interpreter by path, so it is made in place;
# the stamp says the install finished (an interrupted one starts over).
if [[ ! -f "$VENV/.outpost-installed" ]]; then
  log "installing moto[server]==$MOTO_VERSION from PyPI into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  touch "$VENV/.outpost-installed"
fi

log "starting moto_server on $URL (log: $LOG)"
setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
for _ in $(seq 1 120); do
  answers && break
  sleep 0.5
done
if ! answers; then
  log "moto did not answer within 60 s; last lines of $LOG:"
  tail -n 20 "$LOG" >&2
  exit 1
fi
log "ready"
echo "$URL"
