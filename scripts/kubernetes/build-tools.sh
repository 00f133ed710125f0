#!/usr/bin/env bash
# Builds what the Kubernetes tests need and no registry here ships: the
# control-plane and node binaries of Kubernetes, kubectl, helm and the pause
# (pod sandbox) binary, all from the Go module proxy, into a cache outside
# the repository (~/.cache/outpost/kubernetes-<version>, or $OUTPOST_K8S_TOOLS).
# etcd, containerd, runc and the CNI plugins come from Debian's packages.
#
# Why a rewritten copy of the Kubernetes module: its zip has no staging/
# directory (those are separate published modules) and its go.mod points at
# them with `replace` directives, so the copy requires the published
# k8s.io/* modules of the same minor release instead.
#
# Prints the tools directory on its last line. Reuses what is already built
# (a `.complete` marker is written last).
set -euo pipefail

K8S_VERSION=1.33.13
STAGING_VERSION=v0.33.13
HELM_VERSION=3.22.0
TOOLS="${OUTPOST_K8S_TOOLS:-$HOME/.cache/outpost/kubernetes-v$K8S_VERSION}"
log() { echo "kubernetes-tools: $*" >&2; }

if [[ -f "$TOOLS/.complete" ]]; then
  log "reusing $TOOLS"
  echo "$TOOLS"
  exit 0
fi

GO="$(command -v go || echo /usr/local/go/bin/go)"
[[ -x "$GO" ]] || { log "error: no Go toolchain (go1.24 or newer) on PATH or in /usr/local/go/bin"; exit 1; }
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -modcacherw"
mkdir -p "$TOOLS"
started=$SECONDS

log "building helm v$HELM_VERSION"
GOBIN="$TOOLS" "$GO" install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"

work="$(mktemp -d "${TMPDIR:-/tmp}/outpost-k8s-src.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "downloading k8s.io/kubernetes@v$K8S_VERSION"
module_dir="$(cd "$work" && "$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n -E 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
cp -r "$module_dir" "$work/kubernetes"
chmod -R u+w "$work/kubernetes"
cd "$work/kubernetes"
rm -rf go.work go.work.sum vendor
edits=()
for module in $(sed -n '/^replace (/,/^)/p' go.mod | awk '/=>/ {print $1}'); do
  edits+=("-dropreplace=$module" "-require=$module@$STAGING_VERSION")
done
# The sample-* modules are examples, not needed by any binary, and not all on the proxy.
"$GO" mod edit "${edits[@]}" -droprequire=k8s.io/sample-cli-plugin -droprequire=k8s.io/sample-controller -droprequire=k8s.io/sample-apiserver

minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $package.gitVersion=v$K8S_VERSION -X $package.gitMajor=1 -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
done
log "building Kubernetes v$K8S_VERSION (the first build takes several minutes)"
CGO_ENABLED=0 "$GO" build -mod=mod -trimpath -tags providerless -ldflags "$ldflags" -o "$TOOLS/" \
  ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubelet ./cmd/kube-proxy ./cmd/kubectl

log "building the pause binary"
gcc -Os -Wall -Werror -static -DVERSION="v$K8S_VERSION-outpost" -o "$TOOLS/pause" build/pause/linux/pause.c
strip "$TOOLS/pause"

touch "$TOOLS/.complete"
log "built in $((SECONDS - started)) s into $TOOLS"
echo "$TOOLS"
