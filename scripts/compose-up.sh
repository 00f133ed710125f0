#!/usr/bin/env bash
# One-shot bring-up of deploy/docker/compose.yaml: the server, then a pool
# and a pool token made with the server's CLI, then the agent. The three steps
# are the ones documented in the compose file; this script runs them in order
# and keeps the two tokens in deploy/docker/.env (mode 0600, git-ignored),
# which docker-compose reads on every later `up`.
#
#   scripts/compose-up.sh          bring everything up (or reuse what runs)
#
# Afterwards, from the repository root:
#   docker-compose -f deploy/docker/compose.yaml logs -f agent
#   docker-compose -f deploy/docker/compose.yaml down        (add -v to drop the data)
#
# Idempotent: existing tokens in .env, a running server, an existing pool are
# reused. Needs the images (scripts/build-images.sh).
#
# Environment: OUTPOST_COMPOSE_POOL (pool name, default docker); OUTPOST_PORT
# (published port, default 8480), OUTPOST_PUBLIC_URL,
# OUTPOST_COMPOSE_AGENT_DATA_DIR (the agent's data dir on the host, default
# /var/lib/outpost-agent) and COMPOSE_PROJECT_NAME (default outpost), kept in
# .env; OUTPOST_COMPOSE_ENV_FILE (another file than deploy/docker/.env, for a
# second stack next to the first; pass it to docker-compose as --env-file).
# COMPOSE_FILE, if set, is used as docker-compose uses it (e.g. an override).
set -euo pipefail

# Absolute, before the cd below: a relative path is the caller's.
ENV_FILE="${OUTPOST_COMPOSE_ENV_FILE:-}"
if [[ -n "$ENV_FILE" && "$ENV_FILE" != /* ]]; then ENV_FILE="$PWD/$ENV_FILE"; fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
COMPOSE_DIR=deploy/docker
ENV_FILE="${ENV_FILE:-$PWD/$COMPOSE_DIR/.env}"
POOL="${OUTPOST_COMPOSE_POOL:-docker}"

log() { echo "compose-up: $*" >&2; }
fail() { echo "compose-up: error: $*" >&2; exit 1; }

if command -v docker-compose >/dev/null 2>&1; then
  compose_command=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose_command=(docker compose)
else
  fail "neither docker-compose nor the docker compose plugin is installed"
fi
# From the compose file's directory, with the env file this script keeps.
compose() { (cd "$COMPOSE_DIR" && "${compose_command[@]}" --env-file "$ENV_FILE" "$@"); }

for image in outpost/server:latest outpost/agent:latest; do
  docker image inspect "$image" >/dev/null 2>&1 || fail "image $image is missing: run scripts/build-images.sh first"
done

# docker-compose as the user runs it from the repository root, for messages.
compose_hint="docker-compose -f $COMPOSE_DIR/compose.yaml"
if [[ "$ENV_FILE" != "$PWD/$COMPOSE_DIR/.env" ]]; then compose_hint+=" --env-file $ENV_FILE"; fi

env_value() { sed -n "s/^$1=//p" "$ENV_FILE" 2>/dev/null | tail -n 1; }

# 0. The admin token, chosen here so it is known without reading the log.
touch "$ENV_FILE"
chmod 0600 "$ENV_FILE"
if [[ -z "$(env_value COMPOSE_PROJECT_NAME)" ]]; then
  echo "COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-outpost}" >>"$ENV_FILE"
fi
# A port, data dir or public URL given to the first run is kept, so that a
# later plain `docker-compose up` does not recreate a service with the default.
if [[ -n "${OUTPOST_PORT:-}" && -z "$(env_value OUTPOST_PORT)" ]]; then
  echo "OUTPOST_PORT=$OUTPOST_PORT" >>"$ENV_FILE"
fi
if [[ -n "${OUTPOST_COMPOSE_AGENT_DATA_DIR:-}" && -z "$(env_value OUTPOST_COMPOSE_AGENT_DATA_DIR)" ]]; then
  [[ "$OUTPOST_COMPOSE_AGENT_DATA_DIR" == /* ]] || fail "OUTPOST_COMPOSE_AGENT_DATA_DIR must be an absolute path"
  echo "OUTPOST_COMPOSE_AGENT_DATA_DIR=$OUTPOST_COMPOSE_AGENT_DATA_DIR" >>"$ENV_FILE"
fi
if [[ -z "$(env_value OUTPOST_PUBLIC_URL)" ]]; then
  echo "OUTPOST_PUBLIC_URL=${OUTPOST_PUBLIC_URL:-http://127.0.0.1:$(env_value OUTPOST_PORT | grep . || echo 8480)}" >>"$ENV_FILE"
fi
admin_token="$(env_value OUTPOST_BOOTSTRAP_TOKEN)"
if [[ -z "$admin_token" ]]; then
  # One exported for the documented manual steps is the one a running server has.
  admin_token="${OUTPOST_BOOTSTRAP_TOKEN:-opa_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}"
  echo "OUTPOST_BOOTSTRAP_TOKEN=$admin_token" >>"$ENV_FILE"
  log "admin token written to $ENV_FILE"
fi
# docker-compose prefers the shell's variables to the env file's: make them agree.
export OUTPOST_BOOTSTRAP_TOKEN="$admin_token"

# 1. The server, until its health check passes.
log "starting the server"
compose up -d server
container="$(compose ps -q server)"
log "waiting for the server to be healthy"
for _ in $(seq 1 60); do
  status="$(docker inspect -f '{{.State.Health.Status}}' "$container" 2>/dev/null || echo unknown)"
  [[ "$status" == healthy ]] && break
  sleep 1
done
[[ "$status" == healthy ]] || fail "the server is $status after 60 s; see: docker logs $container"

# 2. A pool and a pool token, with the CLI inside the server container.
server_cli() { compose exec -T -e OUTPOST_TOKEN="$admin_token" server outpost "$@"; }
if ! server_cli pool list >/dev/null; then
  fail "the server refuses the admin token in $ENV_FILE. Its data volume was made with another one:
  remove it with \`$compose_hint down -v\` (this deletes all data), or
  put that token in $ENV_FILE as OUTPOST_BOOTSTRAP_TOKEN"
fi
if [[ -z "$(env_value OUTPOST_AGENT_TOKEN)" ]]; then
  if server_cli pool list | awk -v pool="$POOL" 'NR > 1 && $2 == pool { found = 1 } END { exit !found }'; then
    log "pool $POOL exists"
  else
    log "creating pool $POOL"
    server_cli pool create "$POOL" >&2
  fi
  log "creating a pool token for the agent"
  agent_token="$(server_cli pool token create "$POOL" --description "compose agent" 2>/dev/null | tr -d '\r')"
  [[ "$agent_token" == opp_* ]] || fail "pool token create printed no token"
  echo "OUTPOST_AGENT_TOKEN=$agent_token" >>"$ENV_FILE"
  log "pool token written to $ENV_FILE"
fi

# 3. The agent.
export OUTPOST_AGENT_TOKEN="$(env_value OUTPOST_AGENT_TOKEN)"
log "starting the agent"
compose up -d agent

port="$(compose port server 8480 | sed 's/.*://')"
cat >&2 <<EOF

compose-up: Outpost is up: server on http://127.0.0.1:$port, one agent in pool $POOL.
  export OUTPOST_URL=http://127.0.0.1:$port OUTPOST_TOKEN=\$(sed -n 's/^OUTPOST_BOOTSTRAP_TOKEN=//p' $ENV_FILE)
  npx outpost workspace create example --pool $POOL
  npx outpost run examples/hello --workspace example
  $compose_hint logs -f agent
EOF
