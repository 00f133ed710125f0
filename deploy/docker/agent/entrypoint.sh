#!/bin/sh
# Entry point of outpost/agent and outpost/agent-runner: `outpost agent "$@"`
# (so `docker run outpost/agent run` runs `outpost agent run`), after filling
# in two defaults that must yield to the user's settings under either name.
#
# They are not ENV lines in the Dockerfile because the agent reads a setting
# from its OUTPOST_* name first and its SCALR_* alias second: an image-level
# OUTPOST_AGENT_DATA_DIR would silently override a user's
# `-e SCALR_AGENT_DATA_DIR=…`. Here a default applies only when neither name
# is set.
set -eu

# Logs: JSON lines, for log collectors (what the Scalr agent's Helm charts use).
if [ -z "${OUTPOST_AGENT_LOG_FORMAT:-}${SCALR_AGENT_LOG_FORMAT:-}" ]; then
  export OUTPOST_AGENT_LOG_FORMAT=json
fi

# Data dir: job containers are started by the host's Docker, which resolves
# bind-mount sources on the host, so the data dir must sit at the same path on
# the host and in this container. The Scalr agent's installation guide mounts
# /var/lib/scalr-agent; ours mount /var/lib/outpost-agent. Use whichever is
# mounted, so both commands work unchanged.
if [ -z "${OUTPOST_AGENT_DATA_DIR:-}${SCALR_AGENT_DATA_DIR:-}" ]; then
  if awk '$5 == "/var/lib/scalr-agent" { found = 1 } END { exit !found }' /proc/self/mountinfo 2>/dev/null; then
    export OUTPOST_AGENT_DATA_DIR=/var/lib/scalr-agent
  else
    export OUTPOST_AGENT_DATA_DIR=/var/lib/outpost-agent
  fi
fi

exec node /opt/outpost/bin/outpost.js agent "$@"
