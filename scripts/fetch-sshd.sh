#!/usr/bin/env bash
# Fetches OpenSSH's server from Debian for the tests of plain git over SSH
# (test/support/ssh-git-server.ts), which start their own sshd on a free
# loopback port. The packages are downloaded and unpacked
# into ~/.cache/outpost, never installed: installing openssh-server would
# start a system sshd on port 22. libwrap0 comes with it (sshd links it).
# What the package's scripts would have made and sshd needs is made here:
# its privilege separation user (`sshd`, no login) and directory (/run/sshd).
# Prints the sshd binary's path as its last line; reruns take no time.
#
#   bash scripts/fetch-sshd.sh
set -euo pipefail

# shellcheck source=script-help.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-help.sh"
only_help_option fetch-sshd "$@"

CACHE="${OUTPOST_TOOLCHAIN_CACHE:-$HOME/.cache/outpost}"
ROOT="$CACHE/openssh-server"
BINARY="$ROOT/usr/sbin/sshd"
STAMP="$ROOT/.outpost-fetched"

if ! getent passwd sshd >/dev/null; then
  useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
fi
mkdir -p /run/sshd
chmod 0755 /run/sshd

if [[ -x "$BINARY" && -f "$STAMP" ]]; then
  echo "fetch-sshd: already fetched: $BINARY" >&2
  echo "$BINARY"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
# apt-get download writes as the _apt user where it can.
(cd "$work" && apt-get download -q openssh-server libwrap0 >&2)
rm -rf "$ROOT"
mkdir -p "$ROOT"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$ROOT"; done
libs="$(dirname "$(find "$ROOT" -name 'libwrap.so.0' | head -n 1)")"
if LD_LIBRARY_PATH="$libs" ldd "$BINARY" | grep -q 'not found'; then
  echo "fetch-sshd: sshd still misses libraries:" >&2
  LD_LIBRARY_PATH="$libs" ldd "$BINARY" | grep 'not found' >&2
  exit 1
fi
echo "$libs" >"$ROOT/.library-path"
date -u +%FT%TZ >"$STAMP"
echo "fetch-sshd: fetched $(LD_LIBRARY_PATH="$libs" "$BINARY" -V 2>&1 | head -n 1)" >&2
echo "$BINARY"
