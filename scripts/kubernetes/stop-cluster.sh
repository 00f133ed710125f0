#!/usr/bin/env bash
# Stops the test cluster start-cluster.sh started and removes what it left
# on the host: its processes (by pid), the pods' containers, mounts and
# network namespaces, the CNI bridge, and the iptables chains kubelet and
# kube-proxy made (KUBE-*). docker0 and Docker's own chains are never
# touched. `--wipe` also removes the cluster's state (etcd, containerd's
# images and snapshots), keeping the certificates.
set -uo pipefail

DIR="${OUTPOST_K8S_DIR:-/tmp/outpost-k8s}"
TOOLS="${OUTPOST_K8S_TOOLS:-$HOME/.cache/outpost/kubernetes-v1.33.13}"
RUN="$DIR/run"
BRIDGE=outpost-k8s0
export KUBECONFIG="$RUN/pki/admin.kubeconfig"

stop_process() {
  local file="$RUN/$1.pid"
  [[ -s "$file" ]] || return 0
  local pid
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$file"
}

# Pods first, quickly: their containers and mounts must go before containerd does.
if [[ -x "$TOOLS/kubectl" && -s "$RUN/kube-apiserver.pid" ]]; then
  "$TOOLS/kubectl" delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
fi
for name in kube-proxy kubelet kube-scheduler kube-controller-manager; do stop_process "$name"; done
[[ -x "$TOOLS/kube-proxy" ]] && "$TOOLS/kube-proxy" --cleanup >/dev/null 2>&1

ctr=(ctr --address "$RUN/containerd/containerd.sock" -n k8s.io)
if [[ -S "$RUN/containerd/containerd.sock" ]]; then
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
  sleep 1
  for container in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete -f "$container" >/dev/null 2>&1
    "${ctr[@]}" containers rm "$container" >/dev/null 2>&1
  done
fi
for name in kube-apiserver containerd etcd; do stop_process "$name"; done

# containerd-shims outlive containerd; they belong to our socket's namespace.
pkill -9 -f "containerd-shim-runc-v2 .*-address $RUN/containerd/containerd.sock" 2>/dev/null
# Mounts under our directory (projected tokens, overlay root filesystems, netns), deepest first.
grep -o " $RUN[^ ]*" /proc/mounts | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null; done
for netns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$netns" 2>/dev/null; done
ip link delete "$BRIDGE" 2>/dev/null

# Chains kubelet made (kube-proxy --cleanup removed its own), and the CNI
# bridge plugin's masquerade rules for our pod network. Only KUBE-* and CNI-*.
for iptables in iptables ip6tables; do
  "$iptables" -D INPUT -j KUBE-FIREWALL 2>/dev/null
  "$iptables" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
  for table_chain in filter:KUBE-FIREWALL filter:KUBE-PROXY-CANARY filter:KUBE-KUBELET-CANARY nat:KUBE-MARK-MASQ \
    nat:KUBE-PROXY-CANARY nat:KUBE-KUBELET-CANARY mangle:KUBE-PROXY-CANARY mangle:KUBE-KUBELET-CANARY; do
    "$iptables" -t "${table_chain%%:*}" -F "${table_chain##*:}" 2>/dev/null
    "$iptables" -t "${table_chain%%:*}" -X "${table_chain##*:}" 2>/dev/null
  done
done
iptables -t nat -S POSTROUTING 2>/dev/null | grep -- '-j CNI-' | sed 's/^-A/-D/' | while read -r rule; do eval iptables -t nat "$rule" 2>/dev/null; done
for chain in $(iptables -t nat -S 2>/dev/null | awk '/^-N CNI-/ {print $2}'); do
  iptables -t nat -F "$chain" 2>/dev/null
  iptables -t nat -X "$chain" 2>/dev/null
done

if [[ "${1:-}" == --wipe ]]; then
  rm -rf "$RUN/etcd" "$RUN/kubelet" "$RUN/containerd/root" "$RUN/containerd/state" "$RUN/cni/ipam" "$RUN"/*.log
fi
echo "kubernetes: stopped" >&2
