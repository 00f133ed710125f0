#!/usr/bin/env bash
# Builds the hashicorp/aws provider from its Go module for the tests of the
# AWS module in deploy/aws (test/e2e/aws-module.test.ts), which apply it
# against moto: tests never download a provider release. The provider is
# trimmed to the AWS services the module and its example use, so that the
# resources of the other services are not compiled; the SDK clients of all
# services are still linked (the provider's client registry names each), so
# the binary stays about 600 MB.
#
# The binary lands in a filesystem mirror that `tofu init` reads through a
# CLI configuration (provider_installation { filesystem_mirror { … } }); a
# stamp makes reruns return in seconds. Prints the mirror directory as its
# last line: give it to the tests as OUTPOST_TEST_AWS_PROVIDER_MIRROR.
#
# Costly: about 25 minutes of two cores and 5.5 GB of memory, once.
#
#   bash scripts/build-aws-provider.sh
#   OUTPOST_AGENT_GO=/usr/local/go/bin/go bash scripts/build-aws-provider.sh
set -euo pipefail

PROVIDER_VERSION=6.47.1
# The commit of the v6.47.1 release, as the Go module proxy names it (the
# provider's tags are not Go module versions).
MODULE=github.com/hashicorp/terraform-provider-aws
MODULE_VERSION=v1.60.1-0.20260602190131-5f2286d6d836
MINIMUM_GO=1.26.3
# `meta` holds the provider's own data sources (aws_partition, aws_region…).
SERVICES=(apigatewayv2 ec2 ecs iam lambda logs meta secretsmanager sts)

CACHE="${OUTPOST_TOOLCHAIN_CACHE:-$HOME/.cache/outpost}"
ROOT="$CACHE/aws-provider-$PROVIDER_VERSION"
MIRROR="$ROOT/mirror"
PLATFORM="$(go env GOOS 2>/dev/null || echo linux)_$(go env GOARCH 2>/dev/null || echo amd64)"
BINARY="$MIRROR/registry.opentofu.org/hashicorp/aws/$PROVIDER_VERSION/$PLATFORM/terraform-provider-aws_v$PROVIDER_VERSION"
STAMP="$ROOT/.outpost-built"
WANT_STAMP="$MODULE@$MODULE_VERSION ${SERVICES[*]}"
GO="${OUTPOST_AGENT_GO:-go}"
started=$SECONDS
log() { echo "aws provider: [$((SECONDS - started)) s] $*" >&2; }

if [[ -x "$BINARY" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]]; then
  log "already built: $BINARY"
  echo "$MIRROR"
  exit 0
fi

# shellcheck source=go-toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-toolchain.sh"
require_go_toolchain "the provider"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod -modcacherw"

WORK="$ROOT/work"
rm -rf "$WORK"
mkdir -p "$WORK"
# Outside any Go module, so `go mod download` does not resolve against one.
log "downloading $MODULE@$MODULE_VERSION"
dir="$(cd "$WORK" && "$GO" mod download -json "$MODULE@$MODULE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  log "go mod download did not give the module's directory"
  exit 1
fi

# The module cache is read-only, and the trimmed list is an edit: build a copy.
log "copying the module source (without its docs) to $WORK/src"
mkdir -p "$WORK/src"
tar -C "$dir" --exclude=./website --exclude=./docs --exclude=./examples --exclude=./infrastructure -cf - . | tar -C "$WORK/src" -xf -
chmod -R u+w "$WORK/src"

# The provider registers its services from one generated list; the services
# left out are then never compiled, unless a kept one imports them.
generated="$WORK/src/internal/provider/sdkv2/service_packages_gen.go"
keep="$(IFS='|'; echo "${SERVICES[*]}")"
awk -v keep="^($keep)\$" '
  match($0, /"github\.com\/hashicorp\/terraform-provider-aws\/internal\/service\/[a-z0-9]+"/) {
    name = substr($0, RSTART, RLENGTH); sub(/.*\//, "", name); sub(/"$/, "", name)
    if (name !~ keep) next
  }
  match($0, /^[[:space:]]+[a-z0-9]+\.ServicePackage\(ctx\),$/) {
    name = $0; sub(/^[[:space:]]+/, "", name); sub(/\..*/, "", name)
    if (name !~ keep) next
  }
  { print }
' "$generated" >"$generated.trimmed"
mv "$generated.trimmed" "$generated"
kept="$(grep -c '\.ServicePackage(ctx),' "$generated")"
if [[ "$kept" -ne "${#SERVICES[@]}" ]]; then
  log "expected ${#SERVICES[@]} services in $generated after trimming, found $kept: the generated file changed shape"
  exit 1
fi
log "kept the services ${SERVICES[*]}"

log "building with $("$GO" version) (GOTOOLCHAIN=$GOTOOLCHAIN); about 25 minutes on two cores"
mkdir -p "$(dirname "$BINARY")"
(cd "$WORK/src" && "$GO" build -trimpath -buildvcs=false \
  -ldflags "-s -w -X $MODULE/version.ProviderVersion=$PROVIDER_VERSION" \
  -o "$BINARY.partial" .)
mv "$BINARY.partial" "$BINARY"
rm -rf "$WORK"
echo "$WANT_STAMP" >"$STAMP"
log "built $BINARY ($(du -h "$BINARY" | cut -f1))"
echo "$MIRROR"
