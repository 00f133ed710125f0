#!/usr/bin/env bash
# Starts a single-node Kubernetes cluster for the tests, from the binaries
# scripts/kubernetes/build-tools.sh builds and Debian's etcd, containerd,
# runc and CNI plugins. Needs root. Everything it writes is under
# $OUTPOST_K8S_DIR (default /tmp/outpost-k8s); stop-cluster.sh undoes the
# rest (processes, mounts, the CNI bridge, kube-proxy's iptables chains).
# It never touches docker0 or Docker's iptables chains: the docker tests
# share the machine.
#
# Images: every `*.tar` in $OUTPOST_K8S_DIR/images (docker save format) is
# imported into the node's containerd; pods use imagePullPolicy: Never or
# IfNotPresent (there is no registry).
#
# Prints `export KUBECONFIG=…` on its last line.
set -euo pipefail

DIR="${OUTPOST_K8S_DIR:-/tmp/outpost-k8s}"
TOOLS="${OUTPOST_K8S_TOOLS:-$(bash "$(dirname "${BASH_SOURCE[0]}")/build-tools.sh" | tail -n 1)}"
RUN="$DIR/run"
PKI="$RUN/pki"
NODE_IP="${OUTPOST_K8S_NODE_IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i == "src") print $(i + 1)}')}"
NODE_IP="${NODE_IP:-127.0.0.1}"
NODE="$(hostname | tr '[:upper:]' '[:lower:]')"
# Pod and service networks chosen away from Docker's default 172.17.0.0/16.
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
BRIDGE=outpost-k8s0
started=$SECONDS
log() { echo "kubernetes: [$((SECONDS - started)) s] $*" >&2; }

ctr=(ctr --address "$RUN/containerd/containerd.sock" -n k8s.io)
# The images save-images.sh left in $DIR/images, into the node's containerd:
# on every start, so a cluster that was already running gets the images of
# the code being tested, not those of an earlier run.
# An import into a containerd that is garbage-collecting the layers an
# earlier import replaced can fail with "parent snapshot … does not exist";
# the same import a moment later succeeds, so each is tried three times.
import_images() {
  shopt -s nullglob
  local image attempt
  for image in "$DIR"/images/*.tar; do
    for attempt in 1 2 3; do
      if "${ctr[@]}" images import "$image" >/dev/null; then break; fi
      if ((attempt == 3)); then
        log "importing $image failed three times"
        return 1
      fi
      log "importing $image failed (attempt $attempt); trying again"
      sleep 2
    done
  done
  log "images: $("${ctr[@]}" images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
}

if [[ -s "$RUN/kube-apiserver.pid" ]] && kill -0 "$(cat "$RUN/kube-apiserver.pid")" 2>/dev/null; then
  log "already running"
  import_images
  echo "export KUBECONFIG=$PKI/admin.kubeconfig"
  exit 0
fi
mkdir -p "$RUN/containerd" "$RUN/cni/net.d" "$RUN/kubelet" "$DIR/images"

launch() {
  local name=$1
  shift
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# --- certificates and credentials (kept across restarts) ----------------------
if [[ ! -f "$PKI/ca.crt" ]]; then
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=outpost-test-cluster" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:%s\nextendedKeyUsage=serverAuth\n' "$NODE_IP" >apiserver.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt -days 3650 -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # Static tokens: file name, user, groups.
    : >tokens.csv
    while read -r file user groups; do
      token="$(openssl rand -hex 16)"
      echo "$token,$user,$file${groups:+,$groups}" >>tokens.csv
      cat >"$file.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: outpost-test, cluster: {server: "https://127.0.0.1:16443", certificate-authority: "$PKI/ca.crt"}}]
users: [{name: $file, user: {token: "$token"}}]
contexts: [{name: outpost-test, context: {cluster: outpost-test, user: $file}}]
current-context: outpost-test
EOF
    done <<EOF
admin admin system:masters
controller-manager system:kube-controller-manager system:masters
scheduler system:kube-scheduler
kubelet system:node:$NODE system:nodes
proxy system:kube-proxy
EOF
  )
fi

# --- containerd, with its own socket and state (not the system's) -------------
cat >"$RUN/containerd/config.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
[grpc]
  address = "$RUN/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Without CAP_SYS_RESOURCE, runc cannot lower a sandbox's oom_score_adj and every pod fails to start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
EOF
cat >"$RUN/cni/net.d/10-outpost.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "outpost-k8s", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUN/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
cat >"$RUN/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
port: 16250
readOnlyPort: 0
healthzPort: 16248
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: "$PKI/ca.crt"}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
failSwapOn: false
failCgroupV1: false
podLogsDirectory: $RUN/kubelet/pod-logs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
enforceNodeAllocatable: []
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
makeIPTablesUtilChains: false
EOF

log "starting etcd, containerd, kube-apiserver"
launch etcd etcd --name outpost-test --data-dir "$RUN/etcd" \
  --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
  --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
  --initial-cluster outpost-test=http://127.0.0.1:12380 --listen-metrics-urls ''
launch containerd containerd --config "$RUN/containerd/config.toml"
launch kube-apiserver "$TOOLS/kube-apiserver" --etcd-servers=http://127.0.0.1:12379 \
  --bind-address=0.0.0.0 --secure-port=16443 --advertise-address="$NODE_IP" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
  --token-auth-file="$PKI/tokens.csv" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
  --kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname --profiling=false

for _ in $(seq 100); do "${ctr[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
import_images

export KUBECONFIG="$PKI/admin.kubeconfig"
kubectl="$TOOLS/kubectl"
for _ in $(seq 240); do "$kubectl" get --raw /readyz >/dev/null 2>&1 && break; sleep 0.25; done
"$kubectl" get --raw /readyz >/dev/null || { log "kube-apiserver did not become ready; see $RUN/kube-apiserver.log"; exit 1; }

log "starting the controller manager, scheduler, kubelet, kube-proxy"
launch kube-controller-manager "$TOOLS/kube-controller-manager" --kubeconfig="$PKI/controller-manager.kubeconfig" \
  --secure-port=16257 --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=false \
  --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller'
launch kube-scheduler "$TOOLS/kube-scheduler" --kubeconfig="$PKI/scheduler.kubeconfig" --secure-port=16259 --bind-address=127.0.0.1 --leader-elect=false
launch kubelet "$TOOLS/kubelet" --config="$RUN/kubelet/config.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
  --hostname-override="$NODE" --node-ip="$NODE_IP" --root-dir="$RUN/kubelet/root" --cert-dir="$RUN/kubelet/pki"
launch kube-proxy "$TOOLS/kube-proxy" --kubeconfig="$PKI/proxy.kubeconfig" --hostname-override="$NODE" --proxy-mode=iptables \
  --cluster-cidr="$POD_CIDR" --metrics-bind-address=127.0.0.1:16249 --healthz-bind-address=127.0.0.1:16256 \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0

"$kubectl" wait --for=condition=Ready "node/$NODE" --timeout=120s >/dev/null 2>&1 || { sleep 2; "$kubectl" wait --for=condition=Ready "node/$NODE" --timeout=120s >/dev/null; }
for _ in $(seq 240); do
  "$kubectl" get serviceaccount default -n default >/dev/null 2>&1 && "$kubectl" get configmap kube-root-ca.crt -n default >/dev/null 2>&1 && break
  sleep 0.25
done
log "node $NODE ready ($NODE_IP)"
echo "export KUBECONFIG=$KUBECONFIG"
