#!/usr/bin/env bash
# Builds the OpenTofu binary that tests run, from OpenTofu's Go module, into a
# cache outside the repository (test/support/toolchain.ts finds it there),
# and the real gRPC provider the provider-cache tests publish from a local
# registry: OpenTofu's own `provider-simple-v6`, from the same module (the
# Go module proxy does not serve terraform-provider-null's releases).
#
# Why from source: the machines that run CI reach package registries only
# (the Go module proxy among them), never the release download site.
# Why not `go install`: OpenTofu's go.mod has a `replace` directive, which
# `go install module@version` refuses, so we download the module and build it
# in place.
#
# Prints the binary's path on its last line. Reuses a binary already built.
set -euo pipefail

TOFU_VERSION=1.10.10
MODULE=github.com/opentofu/opentofu
CACHE_DIR="${OUTPOST_TOOLCHAIN_CACHE:-$HOME/.cache/outpost}"
BINARY="$CACHE_DIR/tofu-$TOFU_VERSION"
PROVIDER_BINARY="$CACHE_DIR/terraform-provider-simple-$TOFU_VERSION"

log() { echo "build-tofu: $*" >&2; }

# The whole output is captured before matching: `| grep -q` would close the
# pipe early, and under pipefail tofu's SIGPIPE would count as a mismatch.
installed_version="$([[ -x "$BINARY" ]] && "$BINARY" version 2>/dev/null || true)"
if [[ "$installed_version" == "OpenTofu v$TOFU_VERSION"$'\n'* && -x "$PROVIDER_BINARY" ]]; then
  log "reusing $BINARY"
  echo "$BINARY"
  exit 0
fi

# OpenTofu $TOFU_VERSION needs Go >= 1.24. Debian 12's golang-go is 1.19, so
# we rely on the Go toolchain the machine ships in /usr/local/go, and skip an
# older `go` that happens to come first on PATH.
go_minor_version() { "$1" env GOVERSION 2>/dev/null | sed -n -E 's/^go1\.([0-9]+).*/\1/p'; }
GO=''
for candidate in "$(command -v go || true)" /usr/local/go/bin/go; do
  [[ -n "$candidate" && -x "$candidate" ]] || continue
  minor="$(go_minor_version "$candidate")"
  if [[ "$minor" =~ ^[0-9]+$ ]] && ((minor >= 24)); then GO="$candidate"; break; fi
  log "skipping $candidate: $("$candidate" env GOVERSION 2>/dev/null || echo 'unknown version') is older than go1.24"
done
if [[ -z "$GO" ]]; then
  log "error: no Go >= 1.24 found (looked on PATH and in /usr/local/go/bin)."
  log "OpenTofu $TOFU_VERSION needs Go >= 1.24; Debian 12's golang-go (1.19) is too old."
  log "Install Go >= 1.24 into /usr/local/go or put it first on PATH, then rerun."
  exit 1
fi
go_version="$("$GO" env GOVERSION)"
log "using $GO ($go_version)"

mkdir -p "$CACHE_DIR"
log "downloading Go module $MODULE@v$TOFU_VERSION"
# From the cache dir: inside some other Go module, `go mod download` would
# resolve against that module instead.
module_json="$(cd "$CACHE_DIR" && "$GO" mod download -json "$MODULE@v$TOFU_VERSION")"
module_dir="$(echo "$module_json" | sed -n -E 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
if [[ -z "$module_dir" || ! -d "$module_dir" ]]; then
  log "error: go mod download did not report a module directory:"
  echo "$module_json" >&2
  exit 1
fi

# Build into a temporary file next to the target and rename it, so a binary
# at $BINARY is always complete even if this build is interrupted.
tmp_binary="$(mktemp "$CACHE_DIR/.tofu-$TOFU_VERSION.XXXXXX")"
tmp_provider="$(mktemp "$CACHE_DIR/.provider-simple-$TOFU_VERSION.XXXXXX")"
trap 'rm -f "$tmp_binary" "$tmp_provider"' EXIT
log "building $module_dir/cmd/tofu (this takes a few minutes the first time)"
started=$SECONDS
(
  cd "$module_dir"
  # version.dev=no is what OpenTofu's release build sets: without it the
  # binary calls itself "1.10.10-dev", which version constraints reject.
  CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$tmp_binary" ./cmd/tofu
  CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags "-s -w" \
    -o "$tmp_provider" ./internal/provider-simple-v6/main
)
chmod 0755 "$tmp_binary" "$tmp_provider"
mv -f "$tmp_provider" "$PROVIDER_BINARY"
mv -f "$tmp_binary" "$BINARY"
trap - EXIT
built_version="$("$BINARY" version 2>/dev/null || true)"
log "built $BINARY in $((SECONDS - started)) s: ${built_version%%$'\n'*}"
echo "$BINARY"
