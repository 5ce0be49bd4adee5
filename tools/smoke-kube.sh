#!/usr/bin/env bash
# Smoke test of the binaries built by tools/build-kube.sh: etcd on a loopback
# port with a temp data dir, kube-apiserver against it (static admin token,
# RBAC, service-account keys made with openssl), /readyz checked with curl,
# then kube-controller-manager and kwok against that apiserver (kwok must turn
# a fake Node Ready).  Everything listens on 127.0.0.1 only and is stopped on
# exit.
#
#   tools/smoke-kube.sh [BIN_DIR]     (default: the directory build-kube.sh --check prints)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-$("$here/build-kube.sh" --check)}"
work="$(mktemp -d -t pincompute-kube-smoke.XXXXXX)"
pids=()

# Stop in reverse start order (clients before kube-apiserver before etcd);
# SIGKILL whatever has not exited within 10s.
cleanup() {
  local i p t
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
    p="${pids[i]}"
    kill "$p" 2>/dev/null || continue
    for (( t = 0; t < 100; t++ )); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then echo "pid $p still running after 10s; killing" >&2; kill -9 "$p" 2>/dev/null || true; fi
    wait "$p" 2>/dev/null || true
    echo "stopped pid $p after $(( t / 10 ))s" >&2
  done
  if [[ "${KEEP_SMOKE_DIR:-}" == 1 ]]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for <seconds> <description> <command...>; fails early if the last
# started process has exited.
wait_for() {
  local limit="$1" what="$2"; shift 2
  local start=$SECONDS last="${pids[-1]}"
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$last" 2>/dev/null || (( SECONDS - start >= limit )); then
      echo "FAIL: $what not up after $((SECONDS - start))s" >&2
      tail -n 30 "$work"/*.log >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "ok: $what after $((SECONDS - start))s"
}

etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"; kcm_port="$(free_port)"
token="pincompute-smoke-$(date +%s)-$RANDOM"

# Static admin token (system:masters is bound to cluster-admin by RBAC bootstrap).
echo "$token,admin,admin,system:masters" >"$work/tokens.csv"
# Service-account signing key.
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null

"$bin/etcd" \
  --name=smoke \
  --data-dir="$work/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="smoke=http://127.0.0.1:$peer_port" \
  --unsafe-no-fsync \
  >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 30 etcd curl -fsS "http://127.0.0.1:$etcd_port/health"

"$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --secure-port="$api_port" \
  --cert-dir="$work/certs" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$work/sa.pub" \
  --service-account-signing-key-file="$work/sa.key" \
  --token-auth-file="$work/tokens.csv" \
  --authorization-mode=RBAC \
  --service-cluster-ip-range=10.0.0.0/24 \
  >"$work/kube-apiserver.log" 2>&1 &
pids+=($!)
api="https://127.0.0.1:$api_port"
wait_for 120 "kube-apiserver /readyz" curl -fsSk -H "Authorization: Bearer $token" "$api/readyz"
curl -fsSk -H "Authorization: Bearer $token" "$api/version"
echo

cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster:
    server: $api
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $token
contexts:
- name: smoke
  context: {cluster: smoke, user: admin}
current-context: smoke
EOF

"$bin/kube-controller-manager" \
  --kubeconfig="$work/kubeconfig" \
  --authentication-kubeconfig="$work/kubeconfig" \
  --authorization-kubeconfig="$work/kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$kcm_port" \
  --cert-dir="$work/kcm-certs" \
  --service-account-private-key-file="$work/sa.key" \
  --leader-elect=false \
  >"$work/kube-controller-manager.log" 2>&1 &
pids+=($!)
wait_for 60 "kube-controller-manager /healthz" curl -fsSk "https://127.0.0.1:$kcm_port/healthz"

"$bin/kwok" \
  --kubeconfig="$work/kubeconfig" \
  --config="$bin/kwok-stages.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 \
  >"$work/kwok.log" 2>&1 &
pids+=($!)

curl -fsSk -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -X POST "$api/api/v1/nodes" -o /dev/null -d '{
  "apiVersion": "v1", "kind": "Node",
  "metadata": {"name": "kwok-node-0", "annotations": {"kwok.x-k8s.io/node": "fake"},
               "labels": {"type": "kwok"}},
  "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]}
}'
node_ready() {
  curl -fsSk -H "Authorization: Bearer $token" "$api/api/v1/nodes/kwok-node-0" |
    python3 -c 'import json,sys; n=json.load(sys.stdin); sys.exit(0 if any(c["type"]=="Ready" and c["status"]=="True" for c in n.get("status",{}).get("conditions",[])) else 1)'
}
wait_for 60 "kwok node Ready" node_ready

echo "SMOKE OK: $bin"
