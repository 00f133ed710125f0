#!/usr/bin/env bash
# Puts the images the test cluster's pods run into $OUTPOST_K8S_DIR/images
# (docker save format), which start-cluster.sh imports into the node's
# containerd: no registry is reachable, so pods use these with
# imagePullPolicy Never/IfNotPresent. The pause (pod sandbox) image is made
# from the binary build-tools.sh compiled; the project's images come from
# the local Docker daemon (scripts/build-images.sh builds them).
set -euo pipefail

DIR="${OUTPOST_K8S_DIR:-/tmp/outpost-k8s}"
TOOLS="${OUTPOST_K8S_TOOLS:-$(bash "$(dirname "${BASH_SOURCE[0]}")/build-tools.sh" | tail -n 1)}"
VERSION="$(node -p "require('./package.json').version" 2>/dev/null || sed -n -E 's/^  "version": "([^"]+)".*/\1/p' package.json)"
mkdir -p "$DIR/images"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$TOOLS/pause" "$context/pause"
printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$context/Dockerfile"
docker build --quiet --tag registry.k8s.io/pause:3.10 "$context" >/dev/null
docker save registry.k8s.io/pause:3.10 -o "$DIR/images/pause.tar"
docker save "outpost/agent:$VERSION" "outpost/agent:latest" -o "$DIR/images/agent.tar"
echo "kubernetes: images saved into $DIR/images: pause, outpost/agent:$VERSION" >&2
