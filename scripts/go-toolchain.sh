# Sourced by the scripts that build a Go module (build-gitea.sh,
# build-go-tfe-check.sh,
# build-aws-provider.sh): checks that the Go toolchain $GO exists, and when
# it is older than $MINIMUM_GO lets Go fetch that version from the module
# proxy, the same way it fetches the module; a new enough one is used as it
# is. Expects GO, MINIMUM_GO and a `log` function; sets GOTOOLCHAIN.
#
#   require_go_toolchain "Gitea"
require_go_toolchain() {
  local what="$1" have
  if ! command -v "$GO" >/dev/null 2>&1; then
    log "no Go toolchain ($GO): install Go $MINIMUM_GO or newer, or name it with OUTPOST_AGENT_GO"
    exit 1
  fi
  have="$("$GO" env GOVERSION)"
  have="${have#go}"
  if [[ "$(printf '%s\n%s\n' "$MINIMUM_GO" "$have" | sort -V | head -n 1)" == "$MINIMUM_GO" ]]; then
    export GOTOOLCHAIN=local
  else
    log "Go $have is older than $what needs; Go fetches go$MINIMUM_GO"
    export GOTOOLCHAIN="go$MINIMUM_GO"
  fi
}

# Ends the script early when a build is already in place: its binary exists
# and its stamp says it is the build wanted. Prints the binary's path, as the
# build would have.
#
#   reuse_stamped_build "$BINARY" "$STAMP" "$WANT_STAMP"
reuse_stamped_build() {
  local binary="$1" stamp="$2" want="$3"
  if [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "already built: $binary"
    echo "$binary"
    exit 0
  fi
}

# The environment of a pure-Go module build: a Go new enough (see
# require_go_toolchain), no C compiler, and a module cache the script may
# copy sources out of.
prepare_go_module_build() {
  require_go_toolchain "$1"
  export CGO_ENABLED=0
  export GOFLAGS="${GOFLAGS:-} -mod=mod -modcacherw -buildvcs=false"
}
