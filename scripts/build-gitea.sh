#!/usr/bin/env bash
# Builds Gitea from its Go module for the tests of VCS-driven workspaces
# (test/support/gitea.ts), which run a real forge on loopback: tests never
# download a Gitea release.
#
# `go install code.gitea.io/gitea@v…` is refused (its go.mod has replace
# directives), so the module is downloaded, copied out of the read-only
# module cache and built in the copy. The binary is built without the
# `bindata` tag, so it reads its locales and templates from STATIC_ROOT_PATH:
# options/, templates/ and public/ of the module are copied next to it, and
# test/support/gitea.ts points STATIC_ROOT_PATH there. The frontend's
# compiled assets are not in the module; the REST API, git over HTTP and
# webhooks do not need them.
#
# SQLite is the modernc driver (pure Go, Gitea's default since 1.27), so the
# build needs no C compiler. About 3 minutes of two cores and 1.5 GB of
# memory, once; a stamp makes reruns return at once. A binary already in
# place (a manual build) is adopted when it runs. Prints the binary's path as
# its last line: give it to the tests as OUTPOST_TEST_GITEA.
#
#   bash scripts/build-gitea.sh
#   OUTPOST_TOOLCHAIN_CACHE=/tmp/cache bash scripts/build-gitea.sh
#   OUTPOST_AGENT_GO=/usr/local/go/bin/go bash scripts/build-gitea.sh
set -euo pipefail

# shellcheck source=script-help.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-help.sh"
only_help_option build-gitea "$@"

GITEA_VERSION=1.27.3
MODULE=code.gitea.io/gitea
MINIMUM_GO=1.26.4
STATIC_DIRS=(options templates public)

CACHE="${OUTPOST_TOOLCHAIN_CACHE:-$HOME/.cache/outpost}"
ROOT="$CACHE/gitea-$GITEA_VERSION"
BINARY="$ROOT/gitea"
STAMP="$ROOT/.outpost-built"
WANT_STAMP="$MODULE@v$GITEA_VERSION static: ${STATIC_DIRS[*]}"
GO="${OUTPOST_AGENT_GO:-go}"
started=$SECONDS
log() { echo "gitea: [$((SECONDS - started)) s] $*" >&2; }

# shellcheck source=go-toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-toolchain.sh"
reuse_stamped_build "$BINARY" "$STAMP" "$WANT_STAMP"
prepare_go_module_build "Gitea"

mkdir -p "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/outpost-gitea-src.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# Outside any Go module, so `go mod download` does not resolve against one.
log "downloading $MODULE@v$GITEA_VERSION"
dir="$(cd "$WORK" && "$GO" mod download -json "$MODULE@v$GITEA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  log "go mod download did not give the module's directory"
  exit 1
fi

# Locales are required at startup (Gitea exits when a cron task's name has
# no translation), templates render the API's error pages and mails.
for static in "${STATIC_DIRS[@]}"; do
  rm -rf "${ROOT:?}/$static"
  cp -r "$dir/$static" "$ROOT/$static"
  chmod -R u+w "$ROOT/$static"
done
log "copied ${STATIC_DIRS[*]} to $ROOT"

if [[ -x "$BINARY" ]] && version="$("$BINARY" --version 2>/dev/null)" && [[ "${version,,}" == "gitea version "* ]]; then
  log "adopting the binary already at $BINARY ($version)"
else
  # The module cache is read-only; `go build -mod=mod` may rewrite go.sum.
  log "copying the module source to $WORK/src"
  cp -r "$dir" "$WORK/src"
  chmod -R u+w "$WORK/src"
  log "building with $("$GO" version) (GOTOOLCHAIN=$GOTOOLCHAIN); about 3 minutes on two cores"
  (cd "$WORK/src" && "$GO" build -trimpath \
    -ldflags "-s -w -X main.Version=$GITEA_VERSION" \
    -o "$BINARY.partial" .)
  mv "$BINARY.partial" "$BINARY"
  log "built $BINARY ($(du -h "$BINARY" | cut -f1)): $("$BINARY" --version)"
fi
echo "$WANT_STAMP" >"$STAMP"
echo "$BINARY"
