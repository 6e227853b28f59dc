#!/usr/bin/env bash
# Create (or reuse) the kind cluster the end-to-end tests run on.
#
#   usage: scripts/kind-up.sh [--name NAME] [--config FILE] [--fake-gpu N] [--wait SECONDS]
#
#   --name       cluster name (default: $KIND_CLUSTER_NAME or stackgen-e2e); kubectl context kind-NAME
#   --config     kind config (default: scripts/kind/cluster.yaml, which pins the node image)
#   --fake-gpu   advertise N fake nvidia.com/gpu on the nodes labelled stackgen.dev/e2e-pool=gpu,
#                label and taint them like GPU nodes (scripts/kind/fake-gpu.sh); scheduling tests only
#   --wait       seconds to wait for the control plane and for every node to be Ready (default 300)
#
# Idempotent: an existing cluster of that name is reused (its kubeconfig context re-exported), and the
# fake-GPU patch can be applied again. Needs docker (or KIND_EXPERIMENTAL_PROVIDER), kind and kubectl.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/log.sh
source "$repo/scripts/lib/log.sh"
# The project's pinned kubectl (scripts/install-tools.sh) comes first when it exists.
if [[ -d $repo/.tools/bin ]]; then PATH="$repo/.tools/bin:$PATH"; fi

name=${KIND_CLUSTER_NAME:-stackgen-e2e}
config=$repo/scripts/kind/cluster.yaml
fake_gpu=0
wait_s=300
kind_version_tested=v0.30.0

while [[ $# -gt 0 ]]; do
  case $1 in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --config) config=${2:?--config needs a value}; shift 2 ;;
    --fake-gpu) fake_gpu=${2:?--fake-gpu needs a count}; shift 2 ;;
    --wait) wait_s=${2:?--wait needs seconds}; shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p;}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" 2 ;;
  esac
done
[[ $fake_gpu =~ ^[0-9]+$ ]] || die "--fake-gpu needs a non-negative integer" 2
[[ $wait_s =~ ^[0-9]+$ ]] || die "--wait needs seconds" 2
[[ -f $config ]] || die "kind config $config not found" 2

# Bounded calls where coreutils' timeout exists (it does on Linux CI; macOS may lack it).
bounded() {
  local secs=$1; shift
  if command -v timeout >/dev/null; then timeout "$secs" "$@"; else "$@"; fi
}

# --- preflight: say exactly what is missing and how to get it -------------------------------------
if [[ -z ${KIND_EXPERIMENTAL_PROVIDER:-} ]]; then
  command -v docker >/dev/null || die "docker not found on PATH. kind runs each Kubernetes node as a
  container: install Docker Engine (https://docs.docker.com/engine/install/) and start it." 3
  bounded 30 docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer
  ('docker info' failed): start Docker, or check that this user may use its socket." 3
fi
command -v kind >/dev/null || die "kind not found on PATH. Install the tested version with
  go install sigs.k8s.io/kind@$kind_version_tested   (then add \$(go env GOPATH)/bin to PATH)
  or see https://kind.sigs.k8s.io/docs/user/quick-start/#installation" 3
command -v kubectl >/dev/null || die "kubectl not found: run 'make setup' (scripts/install-tools.sh) or install kubectl" 3
kind_version=$(kind version 2>/dev/null | awk '{print $2}')
if [[ $kind_version != "$kind_version_tested" ]]; then
  log "warning: kind $kind_version found, the node image in $config is the one published for kind $kind_version_tested"
fi

context=kind-$name
kc() { kubectl --context "$context" "$@"; }

# --- create or reuse ------------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -x -- "$name" >/dev/null; then
  log "cluster '$name' exists: reusing it"
  kind export kubeconfig --name "$name" >/dev/null
else
  log "creating cluster '$name' from ${config#"$repo"/} (this pulls the node image on first use)"
  # --name overrides the config's name; --wait bounds the wait for the control plane to be Ready.
  kind create cluster --name "$name" --config "$config" --wait "${wait_s}s"
fi

log "waiting up to ${wait_s}s for every node to be Ready"
kc wait --for=condition=Ready nodes --all --timeout="${wait_s}s" >/dev/null

if ((fake_gpu > 0)); then
  "$repo/scripts/kind/fake-gpu.sh" --context "$context" --count "$fake_gpu" \
    --selector stackgen.dev/e2e-pool=gpu
fi

kc get nodes -L stackgen.dev/e2e-pool -L nvidia.com/gpu.product
log "ready: use 'kubectl --context $context' (delete with scripts/kind-down.sh --name $name)"
