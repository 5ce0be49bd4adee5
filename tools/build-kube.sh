#!/usr/bin/env bash
# Build real Kubernetes test binaries (kube-apiserver, kube-controller-manager, kubectl,
# etcd, kwok) from the Go modules pinned under tools/kube, tools/etcd and
# tools/kwok, into a per-version cache directory outside the repository.
#
#   tools/build-kube.sh            build what is missing; print the directory
#   tools/build-kube.sh --check    build nothing; print the directory and exit 0
#                                  if every binary is there, else exit 1
#   tools/build-kube.sh --key      print the version key only
#   tools/build-kube.sh [--check] EXTRA...
#                                  the same, with optional peers (never built
#                                  by default) on top of the standard set:
#       kube-scheduler   k8s.io/kubernetes/cmd/kube-scheduler (tools/kube)
#       scheduler-perf   `go test -c` of k8s.io/kubernetes/test/integration/
#                        scheduler_perf/misc, as scheduler_perf.test, plus the
#                        path of that package's source directory (it runs from
#                        there) in scheduler-perf.dir (tools/kube; ~15 min)
#       etcdload         put load generator on the etcd client (tools/etcdload)
#       peers            all three
#
# Cache root: $PINCOMPUTE_KUBE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/pincompute/kube.
# Binaries land in <root>/<key>/ with a VERSION file.  The first build on a
# machine takes a while (see tools/README.md); later runs find the binaries
# and return in well under a second.  Besides the four binaries the directory
# holds kwok-stages.yaml, kwok's default Stage set (pass it as kwok --config).
# Progress goes to stderr; the only line on stdout is the directory, so
# `dir=$(tools/build-kube.sh)` works.
#
# Needs only `go` (the version in tools/*/go.mod or newer) and the Go module
# proxy; the committed go.sum files pin every dependency.  Builds run under
# `nice -n 19` and use Go's default GOCACHE/GOMODCACHE so that later sessions
# on the same machine reuse them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="build"
extras=()
for arg in "$@"; do
  case "$arg" in
    --check) mode="check" ;;
    --key) mode="key" ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    kube-scheduler|scheduler-perf|etcdload) extras+=("$arg") ;;
    peers) extras+=(kube-scheduler scheduler-perf etcdload) ;;
    *) echo "build-kube.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-kube: $*" >&2; }

# Version of module $2 required by the go.mod in directory $1 (first
# occurrence as "<path> <version>", whether in a require line or block).
modver() {
  awk -v m="$2" '{ for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) { print $(i+1); exit } }' "$1/go.mod"
}

k8s_version="$(modver "$here/kube" k8s.io/kubernetes)"
etcd_version="$(modver "$here/etcd" go.etcd.io/etcd/server/v3)"
kwok_version="$(modver "$here/kwok" sigs.k8s.io/kwok)"
for v in k8s_version etcd_version kwok_version; do
  [[ -n "${!v}" ]] || { log "cannot read $v from tools/*/go.mod"; exit 1; }
done

# Every staging module must be replaced by the v0.<minor>.<patch> that matches
# k8s.io/kubernetes v1.<minor>.<patch>; a mismatch builds a skewed binary.
staging_version="v0.${k8s_version#v1.}"
bad="$(awk -v want="$staging_version" '$2 == "=>" && $1 ~ /^k8s\.io\// && $4 != want { print $1 " " $4 }' "$here/kube/go.mod")"
if [[ -n "$bad" ]]; then
  log "tools/kube/go.mod: staging replaces must all be $staging_version, found:"
  echo "$bad" >&2
  exit 1
fi

key="k8s-${k8s_version}-etcd-${etcd_version}-kwok-${kwok_version}"
if [[ "$mode" == "key" ]]; then
  echo "$key"
  exit 0
fi

root="${PINCOMPUTE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pincompute/kube}"
dir="$root/$key"
bins=(kube-apiserver kube-controller-manager kubectl etcd kwok)
# The optional peers, by the file each one leaves in the directory.
extra_files=()
for e in "${extras[@]+"${extras[@]}"}"; do
  case "$e" in
    kube-scheduler) extra_files+=(kube-scheduler) ;;
    scheduler-perf) extra_files+=(scheduler_perf.test scheduler-perf.dir) ;;
    etcdload) extra_files+=(etcdload) ;;
  esac
done

all_present() {
  local b
  for b in "${bins[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
  for b in "${extra_files[@]+"${extra_files[@]}"}"; do [[ -s "$dir/$b" ]] || return 1; done
  [[ -f "$dir/kwok-stages.yaml" && -f "$dir/VERSION" ]]
}

if all_present; then
  echo "$dir"
  exit 0
fi
if [[ "$mode" == "check" ]]; then
  log "not built yet: $dir (run tools/build-kube.sh)"
  exit 1
fi

command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$dir"

# One build at a time per key: a second caller waits, then finds the binaries.
exec 9>"$dir/.lock"
if ! flock -n 9; then
  log "another build of $key is running; waiting for it"
  flock 9
fi

# Static binaries, as upstream releases them.  Flags on the command line (not
# GOFLAGS, which would hide a GOFLAGS set with `go env -w`): go.sum is
# authoritative, and no git revision of this repository is stamped into the
# etcd wrapper (so the binary does not depend on the work tree's state).
export CGO_ENABLED=0

k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

# build <binary> <module dir> <package> [ldflags [go subcommand]]
build() {
  local bin="$1" mod="$2" pkg="$3" ldflags="${4:--s -w}" gocmd="${5:-build}"
  if [[ -x "$dir/$bin" ]]; then
    log "$bin: already built"
    return 0
  fi
  log "$bin: building $pkg (nice -n 19) ..."
  local start=$SECONDS tmp="$dir/.$bin.tmp.$$"
  if [[ "$gocmd" == "test" ]]; then
    # No -trimpath: the test starts an API server whose test helpers find their
    # fixtures through the absolute source paths compiled into the binary.
    (cd "$here/$mod" && nice -n 19 go test -c -vet=off -mod=readonly -buildvcs=false -ldflags "$ldflags" -o "$tmp" "$pkg")
  else
    (cd "$here/$mod" && nice -n 19 go build -mod=readonly -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg")
  fi
  mv -f "$tmp" "$dir/$bin"
  log "$bin: built in $((SECONDS - start))s"
  { grep -v "^build_seconds_$bin=" "$dir/.build-times" 2>/dev/null || true
    echo "build_seconds_$bin=$((SECONDS - start))"; } >"$dir/.build-times.tmp"
  mv -f "$dir/.build-times.tmp" "$dir/.build-times"
}

trap 'rm -f "$dir"/.*.tmp.$$ "$dir"/*.yaml.tmp "$dir"/*.dir.tmp' EXIT
total_start=$SECONDS
build etcd etcd .
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager kube k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
for e in "${extras[@]+"${extras[@]}"}"; do
  case "$e" in
    kube-scheduler) build kube-scheduler kube k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags" ;;
    etcdload) build etcdload etcdload . ;;
    scheduler-perf)
      # The test reads its config (performance-config.yaml, templates/) by
      # relative path, so it must run from its package directory: the
      # read-only copy in the module cache, whose path is recorded beside it.
      build scheduler_perf.test kube k8s.io/kubernetes/test/integration/scheduler_perf/misc "$k8s_ldflags" test
      if [[ ! -s "$dir/scheduler-perf.dir" ]]; then
        pkg_dir="$(cd "$here/kube" && go list -mod=readonly -f '{{.Dir}}' k8s.io/kubernetes/test/integration/scheduler_perf/misc)"
        [[ -f "$pkg_dir/performance-config.yaml" ]] || { log "scheduler_perf source not found"; exit 1; }
        echo "$pkg_dir" >"$dir/scheduler-perf.dir.tmp"
        mv -f "$dir/scheduler-perf.dir.tmp" "$dir/scheduler-perf.dir"
      fi ;;
  esac
done

# kwok does nothing without Stage objects.  kwokctl passes its defaults for a
# cluster with node leases; write the same set, from the pinned kwok module's
# own source, for `kwok --config=<dir>/kwok-stages.yaml`.
if [[ ! -f "$dir/kwok-stages.yaml" ]]; then
  kwok_src="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  [[ -n "$kwok_src" && -d "$kwok_src/kustomize/stage" ]] || { log "kwok module source not found"; exit 1; }
  first=1
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    (( first )) || echo "---"
    first=0
    cat "$kwok_src/kustomize/stage/$f"
  done >"$dir/kwok-stages.yaml.tmp"
  mv -f "$dir/kwok-stages.yaml.tmp" "$dir/kwok-stages.yaml"
  log "kwok-stages.yaml: written from $kwok_src/kustomize/stage"
fi

{
  echo "key=$key"
  echo "kubernetes=$k8s_version"
  echo "staging=$staging_version"
  echo "etcd=$etcd_version"
  echo "kwok=$kwok_version"
  echo "go=$(go env GOVERSION)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  [[ -f "$dir/.build-times" ]] && cat "$dir/.build-times"
  echo "build_seconds_total_this_run=$((SECONDS - total_start))"
} >"$dir/VERSION.tmp"
mv -f "$dir/VERSION.tmp" "$dir/VERSION"
log "done: $dir"
echo "$dir"
