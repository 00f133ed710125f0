#!/usr/bin/env bash
# Builds the four Outpost images from deploy/docker/, in dependency order, and
# prints their sizes:
#
#   outpost/server        the control plane                 (FROM node:24-bookworm-slim)
#   outpost/agent         the agent                         (FROM node:24-bookworm-slim)
#   outpost/runner        the default job image             (FROM debian:bookworm-slim)
#   outpost/agent-runner  the agent + the runner's tools    (FROM outpost/agent)
#
# each tagged `latest` and with the version in package.json.
#
#   scripts/build-images.sh                  bases from the registry (Docker Hub)
#   scripts/build-images.sh --local-bases    first make the bases locally if missing
#
# --local-bases is for machines that reach package mirrors but no image
# registry (CI): it makes debian:bookworm-slim with debootstrap from the
# Debian mirror, and node:24-bookworm-slim from it plus this repository's Node
# 24 (the `node` npm package in node_modules) and npm from the npm registry.
# The Debian root filesystem is cached as a tarball outside the repository,
# so later runs import it in seconds; an image that already exists is reused.
#
# Options:
#   --local-bases     make missing base images locally (needs root for debootstrap)
#   --refresh-bases   with --local-bases: remake the bases even if they exist
#                     (a fresh debootstrap picks up Debian's updates)
#   --no-cache        build the Outpost images without Docker's layer cache
#
# Environment:
#   OUTPOST_IMAGE_CACHE    cache of the rootfs tarball and npm (default ~/.cache/outpost/rootfs)
#   OUTPOST_IMAGE_PREFIX   repository prefix of the images (default outpost)
#   OUTPOST_BUILD_NETWORK  network of RUN steps: unset probes the default bridge
#                          and falls back to `host`; or `default`, `host`, …
#   DEBIAN_MIRROR          mirror debootstrap uses (default http://deb.debian.org/debian)
#   OUTPOST_BUILD_CA_CERTS PEM file of CAs npm trusts in the builds (default: the
#                          host's local CAs in /usr/local/share/ca-certificates)
#   DEBIAN_IMAGE, NODE_IMAGE  base image names (defaults debian:bookworm-slim, node:24-bookworm-slim)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"

CACHE_DIR="${OUTPOST_IMAGE_CACHE:-$HOME/.cache/outpost/rootfs}"
PREFIX="${OUTPOST_IMAGE_PREFIX:-outpost}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE=bookworm
DEBIAN_IMAGE="${DEBIAN_IMAGE:-debian:bookworm-slim}"
NODE_IMAGE="${NODE_IMAGE:-node:24-bookworm-slim}"
NODE_MAJOR=24
NPM_SPEC=npm@11
ROOTFS_TARBALL="$CACHE_DIR/debian-$DEBIAN_SUITE-minbase.tar"

local_bases=false
refresh_bases=false
cache_flags=()
# shellcheck source=script-help.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-help.sh"
for argument in "$@"; do
  case "$argument" in
    --local-bases) local_bases=true ;;
    --refresh-bases) refresh_bases=true ;;
    --no-cache) cache_flags=(--no-cache) ;;
    -h | --help) print_script_help "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build-images: unknown option $argument (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "build-images: $*"; }
fail() { echo "build-images: error: $*" >&2; exit 1; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! docker info >/dev/null 2>&1; then
  fail "cannot reach the Docker daemon (docker info failed). Start dockerd, or run as a user in the docker group."
fi

VERSION="$(sed -n -E 's/^  "version": "([^"]+)",?$/\1/p' package.json)"
[[ -n "$VERSION" ]] || fail "no version found in package.json"
# The OCI source label: the repository's public https remote if it has one.
SOURCE_URL="$(git remote get-url origin 2>/dev/null || true)"
[[ "$SOURCE_URL" == https://* ]] || SOURCE_URL=https://github.com/outpost/outpost
SOURCE_URL="${SOURCE_URL%.git}"

# --- base images -------------------------------------------------------------

# Unmounts whatever debootstrap left mounted below $1 (it mounts /proc and
# /sys in the target while installing), then removes $1 without crossing into
# other file systems.
remove_rootfs() {
  local dir="$1" mount_point
  [[ -d "$dir" ]] || return 0
  while read -r mount_point; do
    umount -l "$mount_point" 2>/dev/null || true
  done < <(awk -v dir="$dir" '$2 == dir || index($2, dir "/") == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}

# Trims a debootstrapped tree the way Debian's official -slim images are
# trimmed (debuerreotype's slimify and minimizing config): no docs, man pages
# or translations (now or in later installs), no package caches, no services
# started by package scripts, and none of the host's identity files.
slim_rootfs() {
  local root="$1"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# As in Debian's official -slim images: documentation is left out of installs.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,lintian,locale,man}/*

  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # Package scripts must not start services inside an image build.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"

  # The official image's sources: the release, its updates and security.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
  find "$root/var/log" -type f -delete
  rm -rf "$root"/tmp/* "$root"/var/tmp/*
  # Docker mounts its own over these; the host's copies stay out of the image.
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
}

make_rootfs_tarball() {
  [[ "$(id -u)" == 0 ]] || fail "debootstrap needs root; run this script as root (or import $DEBIAN_IMAGE another way)"
  command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
  mkdir -p "$CACHE_DIR"
  local rootfs debootstrap_log="$CACHE_DIR/debootstrap.log" started=$SECONDS
  rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the trap must remove this directory
  trap "remove_rootfs '$rootfs'" EXIT
  log "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (log: $debootstrap_log)"
  if ! debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$debootstrap_log" 2>&1; then
    tail -n 20 "$debootstrap_log" >&2
    fail "debootstrap failed (full log: $debootstrap_log)"
  fi
  log "debootstrap done in $((SECONDS - started)) s; trimming it like the official -slim image"
  slim_rootfs "$rootfs"
  log "writing $ROOTFS_TARBALL"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$ROOTFS_TARBALL.partial" .
  mv -f "$ROOTFS_TARBALL.partial" "$ROOTFS_TARBALL"
  remove_rootfs "$rootfs"
  trap - EXIT
}

ensure_debian_base() {
  if image_exists "$DEBIAN_IMAGE" && [[ "$refresh_bases" == false ]]; then
    log "base $DEBIAN_IMAGE: exists, reused"
    return
  fi
  if [[ ! -f "$ROOTFS_TARBALL" || "$refresh_bases" == true ]]; then
    make_rootfs_tarball
  else
    log "base $DEBIAN_IMAGE: from the cached $ROOTFS_TARBALL"
  fi
  log "docker import $ROOTFS_TARBALL as $DEBIAN_IMAGE"
  # The official image's configuration: the standard PATH and `bash`.
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $DEBIAN_SUITE (scripts/build-images.sh --local-bases)" \
    "$ROOTFS_TARBALL" "$DEBIAN_IMAGE" >/dev/null
}

# npm as published on the npm registry (it bundles its dependencies), cached.
newest_npm_tarball() { { find "$CACHE_DIR" -maxdepth 1 -name 'npm-*.tgz' 2>/dev/null || true; } | sort -V | tail -n 1; }
npm_tarball() {
  local tarball
  tarball="$(newest_npm_tarball)"
  if [[ -z "$tarball" ]]; then
    command -v npm >/dev/null || fail "npm is needed to fetch $NPM_SPEC from the npm registry"
    mkdir -p "$CACHE_DIR"
    log "npm pack $NPM_SPEC (from the npm registry) into $CACHE_DIR" >&2
    (cd "$CACHE_DIR" && npm pack "$NPM_SPEC" --silent >/dev/null)
    tarball="$(newest_npm_tarball)"
    [[ -n "$tarball" ]] || fail "npm pack $NPM_SPEC produced no tarball"
  fi
  echo "$tarball"
}

# The official node image's layout: node in /usr/local/bin, npm in
# /usr/local/lib/node_modules with npm/npx links, user `node` (1000:1000).
# Made with `docker build` FROM the Debian base rather than a second
# `docker import`, so it shares the Debian layer with outpost/runner.
ensure_node_base() {
  if image_exists "$NODE_IMAGE" && [[ "$refresh_bases" == false ]]; then
    log "base $NODE_IMAGE: exists, reused"
    return
  fi
  local node_binary=node_modules/node/bin/node node_version npm_tgz context
  [[ -x "$node_binary" ]] || fail "$node_binary is missing: run \`npm ci\` first (the \`node\` devDependency is Node $NODE_MAJOR)"
  node_version="$("$node_binary" --version)"
  [[ "$node_version" == "v$NODE_MAJOR."* ]] || fail "$node_binary is $node_version, not Node $NODE_MAJOR"
  npm_tgz="$(npm_tarball)"
  log "base $NODE_IMAGE: $DEBIAN_IMAGE + node $node_version ($node_binary) + $(basename "$npm_tgz" .tgz)"

  context="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: the trap must remove this directory
  trap "rm -rf '$context'" EXIT
  # Copied with its mode (0755): a chmod in a later layer would store the
  # 120 MB binary twice.
  install -m 0755 "$node_binary" "$context/node"
  mkdir "$context/npm"
  tar -xzf "$npm_tgz" -C "$context/npm" --strip-components=1
  cat >"$context/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
ENV NODE_VERSION=${node_version#v}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
CMD ["node"]
EOF
  docker build --tag "$NODE_IMAGE" "$context"
  rm -rf "$context"
  trap - EXIT
}

# --- the network of RUN steps ------------------------------------------------

# apt-get and npm ci in RUN steps need deb.debian.org and registry.npmjs.org.
# Docker's default bridge reaches them through NAT; where that is broken (no
# IP forwarding, iptables rules missing), the host's network still works.
build_network_flags=()
choose_build_network() {
  local choice="${OUTPOST_BUILD_NETWORK:-}"
  if [[ -n "$choice" ]]; then
    log "RUN steps use the network $choice (OUTPOST_BUILD_NETWORK)"
    build_network_flags=(--network "$choice")
    return
  fi
  if ! image_exists "$DEBIAN_IMAGE"; then
    return # pulled by the first build; a machine that pulls has working networking
  fi
  # shellcheck disable=SC2016 # expanded by bash in the container
  local probe='for host in deb.debian.org:80 registry.npmjs.org:443; do
    timeout 10 bash -c "exec 3<>/dev/tcp/${host%:*}/${host#*:}" || { echo "cannot reach $host" >&2; exit 1; }
  done'
  if docker run --rm "$DEBIAN_IMAGE" bash -c "$probe"; then
    log "RUN steps reach deb.debian.org and registry.npmjs.org on the default bridge network"
  elif docker run --rm --network host "$DEBIAN_IMAGE" bash -c "$probe"; then
    log "warning: containers on the default bridge cannot reach the package mirrors; building with --network host"
    log "(check: sysctl net.ipv4.ip_forward, iptables -t nat -L POSTROUTING, /etc/resolv.conf)"
    build_network_flags=(--network host)
  else
    fail "containers reach neither deb.debian.org nor registry.npmjs.org, on the bridge or the host network"
  fi
}

# --- certificates for npm behind a TLS-intercepting proxy -------------------

# `npm ci` in the server and agent builds talks HTTPS to the npm registry from
# a Node image that trusts only Node's built-in CAs. Where the network
# intercepts TLS (corporate proxies, this project's CI), the host trusts an
# extra CA it was given locally (update-ca-certificates' local directory);
# the build trusts the same ones, through the BUILD_CA_CERTS argument.
ca_build_args=()
choose_build_ca_certs() {
  local files=()
  if [[ -n "${OUTPOST_BUILD_CA_CERTS:-}" ]]; then
    files=("$OUTPOST_BUILD_CA_CERTS")
  else
    shopt -s nullglob
    files=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
    shopt -u nullglob
  fi
  if ((${#files[@]} > 0)); then
    log "npm in the builds also trusts the local CA certificates ${files[*]}"
    ca_build_args=(--build-arg "BUILD_CA_CERTS=$(cat "${files[@]}")")
  fi
}

# --- the Outpost images ------------------------------------------------------

build_image() {
  local name="$1" dockerfile="$2" started=$SECONDS
  shift 2
  log "building $PREFIX/$name:$VERSION from $dockerfile"
  docker build "${cache_flags[@]}" "${build_network_flags[@]}" \
    --file "$dockerfile" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "SOURCE_URL=$SOURCE_URL" \
    "$@" \
    --tag "$PREFIX/$name:$VERSION" --tag "$PREFIX/$name:latest" \
    .
  log "built $PREFIX/$name:$VERSION in $((SECONDS - started)) s"
}

if [[ "$local_bases" == true ]]; then
  ensure_debian_base
  ensure_node_base
elif [[ "$refresh_bases" == true ]]; then
  fail "--refresh-bases goes with --local-bases"
fi
choose_build_network
choose_build_ca_certs

build_image server deploy/docker/server/Dockerfile --build-arg "NODE_IMAGE=$NODE_IMAGE" "${ca_build_args[@]}"
build_image agent deploy/docker/agent/Dockerfile --build-arg "NODE_IMAGE=$NODE_IMAGE" "${ca_build_args[@]}"
build_image runner deploy/docker/runner/Dockerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE"
build_image agent-runner deploy/docker/agent-runner/Dockerfile --build-arg "AGENT_IMAGE=$PREFIX/agent:$VERSION"

echo
log "images (uncompressed size; layers are shared between them):"
for image in "$DEBIAN_IMAGE" "$NODE_IMAGE" "$PREFIX/server:$VERSION" "$PREFIX/agent:$VERSION" \
  "$PREFIX/runner:$VERSION" "$PREFIX/agent-runner:$VERSION"; do
  printf '  %-36s %s\n' "$image" "$(docker image ls --format '{{.Size}}' "$image" | head -n 1)"
done
log "done in $SECONDS s"
