#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, the real control-plane binaries tests/cluster runs:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy (Kubernetes) and etcd, pinned in
# go.mod next to this script, and the kwok controller, pinned in kwok/go.mod.
#
# Usage: scripts/controlplane/build.sh        -> builds if needed; the LAST line of stdout is the bin dir
# Env:   STACKGEN_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/stackgen)
#        GO               go command (default: go on PATH, else /usr/local/go/bin/go)
#        STACKGEN_JOBS    parallel compile jobs (default 2: the CI machine has 2 cores)
# Progress and timings go to stderr so callers can read the bin dir from stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/../lib/cache.sh"
go_cmd=$(go_command)

# Never let the go command fetch a different toolchain: fail loudly instead.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

cd "$here"
mod_version() { (cd "$here/$1" && "$go_cmd" list -m -f '{{.Version}}' "$2"); }

kube_version=$(mod_version . k8s.io/kubernetes)
etcd_version=$(mod_version . go.etcd.io/etcd/server/v3)
kwok_version=$(mod_version kwok sigs.k8s.io/kwok)

major_minor=${kube_version#v}
kube_major=${major_minor%%.*}
kube_minor=${major_minor#*.}
kube_minor=${kube_minor%%.*}
# The same -X flags hack/lib/version.sh passes, so the binaries report their real version
# (the apiserver derives its emulation/compatibility version from it).
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$kube_major"
  kube_ldflags+=" -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done
kwok_ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_version#v}"
kwok_ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${major_minor}"

go_version=$("$go_cmd" env GOVERSION)
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kwok)
# The cache key covers everything that changes the output, as every builder's does (lib/cache.sh): the
# pinned modules (go.mod and go.sum, whose versions are the ones versions.yaml checks), the toolchain and
# the build flags; not this script's comments, so an edit here does not cost a rebuild.
key=$(cache_key "$(cat go.mod go.sum kwok/go.mod kwok/go.sum)" "$go_version" "$kube_ldflags" "$kwok_ldflags" \
  "${binaries[*]}")
build_start controlplane "$key" bin
bin=$BUILD_WORK/bin
mkdir -m 755 "$bin"
log "building kubernetes $kube_version, etcd $etcd_version, kwok $kwok_version with $go_version into $CACHE_OUT/bin"

# build DIR LDFLAGS PACKAGE...: one `go build` for every command of a module, so that each link (one core for
# half a minute or more) runs beside the compiles of the others; niced so that other work on a shared machine
# keeps going. etcd is linked with the Kubernetes -X flags too: they name packages etcd does not link, which
# the linker ignores.
build() {
  local dir=$1 ldflags=$2 start=$SECONDS
  shift 2
  (cd "$here/$dir" && nice -n 10 "$go_cmd" build -p "$STACKGEN_JOBS" -trimpath -ldflags "$ldflags" -o "$bin/" "$@")
  log "built the $# command(s) of module ${dir/#./controlplane} in $(( SECONDS - start ))s"
}

log "downloading modules (needs the Go module proxy unless the module cache already has them)"
"$go_cmd" mod download
(cd kwok && "$go_cmd" mod download)
log "modules ready after $(build_seconds)s"
build . "$kube_ldflags" go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy}
# A command whose path ends in a major version (server/v3) is named by the element before it.
mv "$bin/server" "$bin/etcd"
build kwok "$kwok_ldflags" sigs.k8s.io/kwok/cmd/kwok

for b in "${binaries[@]}"; do
  [[ -x "$bin/$b" ]] || die "missing $b after build" 4
done
build_finish "kubernetes=$kube_version" "etcd=$etcd_version" "kwok=$kwok_version" "go=$go_version"
