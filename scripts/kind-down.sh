#!/usr/bin/env bash
# Delete the end-to-end kind cluster; a cluster that does not exist is not an error.
#
#   usage: scripts/kind-down.sh [--name NAME]    (default: $KIND_CLUSTER_NAME or stackgen-e2e)
set -euo pipefail

# shellcheck source=scripts/lib/log.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

name=${KIND_CLUSTER_NAME:-stackgen-e2e}

while [[ $# -gt 0 ]]; do
  case $1 in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p;}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" 2 ;;
  esac
done

if [[ -z ${KIND_EXPERIMENTAL_PROVIDER:-} ]]; then
  command -v docker >/dev/null || die "docker not found on PATH: nothing kind created can exist here" 3
fi
command -v kind >/dev/null || die "kind not found on PATH (go install sigs.k8s.io/kind@v0.30.0)" 3

if ! clusters=$(kind get clusters 2>&1); then
  die "kind cannot list clusters (is the docker daemon running?): $clusters" 3
fi
if grep -qx -- "$name" <<<"$clusters"; then
  log "deleting cluster '$name'"
  # kind removes the node containers and the kind-NAME entry from the kubeconfig.
  kind delete cluster --name "$name"
else
  log "no cluster named '$name': nothing to do"
fi
