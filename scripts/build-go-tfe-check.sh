#!/usr/bin/env bash
# Builds the go-tfe conformance program (test/go-tfe): HashiCorp's Go client
# for the Terraform Enterprise API, go-tfe, run against Outpost's /api/v2 by
# test/e2e/go-tfe.test.ts. go-tfe and its dependencies come from the Go
# module proxy, at the versions test/go-tfe/go.sum pins.
#
# The binary goes to a cache directory named by a hash of test/go-tfe's
# sources, so a change to the program builds anew and an unchanged one is
# reused: a stamp makes reruns return at once. The sources are built from a
# copy, so that `-mod=mod` never rewrites the work tree's go.mod or go.sum.
# About 20 seconds once (the modules' download and a cold build cache), then nothing.
# Prints the binary's path as its last line: give it to the tests as
# OUTPOST_TEST_GO_TFE.
#
#   bash scripts/build-go-tfe-check.sh
#   OUTPOST_TOOLCHAIN_CACHE=/tmp/cache bash scripts/build-go-tfe-check.sh
#   OUTPOST_AGENT_GO=/usr/local/go/bin/go bash scripts/build-go-tfe-check.sh
set -euo pipefail

# shellcheck source=script-help.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-help.sh"
only_help_option build-go-tfe-check "$@"

SOURCES="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/go-tfe" && pwd)"
# The go directive of test/go-tfe/go.mod (go-tfe's own minimum).
MINIMUM_GO=1.25.0

# Relative names and contents of every file of the module: the same sources
# hash the same wherever the repository is cloned.
hash="$(cd "$SOURCES" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
CACHE="${OUTPOST_TOOLCHAIN_CACHE:-$HOME/.cache/outpost}"
ROOT="$CACHE/go-tfe-check-$hash"
BINARY="$ROOT/go-tfe-check"
STAMP="$ROOT/.outpost-built"
GO="${OUTPOST_AGENT_GO:-go}"
started=$SECONDS
log() { echo "go-tfe-check: [$((SECONDS - started)) s] $*" >&2; }

# shellcheck source=go-toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-toolchain.sh"
reuse_stamped_build "$BINARY" "$STAMP" "$hash"
prepare_go_module_build "go-tfe"

mkdir -p "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/outpost-go-tfe-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp -r "$SOURCES" "$WORK/src"
log "building $SOURCES with $("$GO" version) (GOTOOLCHAIN=$GOTOOLCHAIN)"
(cd "$WORK/src" && "$GO" build -trimpath -ldflags "-s -w" -o "$BINARY.partial" .)
mv "$BINARY.partial" "$BINARY"
echo "$hash" >"$STAMP"
log "built $BINARY ($(du -h "$BINARY" | cut -f1))"
echo "$BINARY"
