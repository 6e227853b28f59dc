#!/usr/bin/env bash
# Make kind nodes look like GPU nodes to the scheduler (no real GPU, no device plugin): advertise
# COUNT units of nvidia.com/gpu through the node's status subresource, add the labels GPU feature
# discovery would add and taint the node like managed GPU nodes. The objects themselves are built by
# fake_gpu.py (tested offline by tests/e2e/test_offline.py). Pods requesting the resource get
# scheduled and admitted, but nothing can use a GPU: this is for scheduling tests only.
#
#   usage: scripts/kind/fake-gpu.sh --context CTX --count N (--selector LABEL=VALUE | NODE...)
#
# Idempotent: the JSON patch uses `add` (replaces), labels and taint use --overwrite.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
kubectl=${KUBECTL:-kubectl}
context=""
count=""
selector=""
nodes=()

die() { echo "fake-gpu: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --context) context=${2:?--context needs a value}; shift 2 ;;
    --count) count=${2:?--count needs a value}; shift 2 ;;
    --selector) selector=${2:?--selector needs a value}; shift 2 ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) nodes+=("$1"); shift ;;
  esac
done
[[ -n $context ]] || die "--context is required (never patch whatever cluster is current)"
[[ $count =~ ^[0-9]+$ ]] || die "--count must be a non-negative integer"
command -v "$python" >/dev/null || die "$python not found (set PYTHON)"
command -v "$kubectl" >/dev/null || die "$kubectl not found (set KUBECTL or run scripts/install-tools.sh)"

kc() { "$kubectl" --context "$context" "$@"; }

if [[ -n $selector ]]; then
  mapfile -t nodes < <(kc get nodes -l "$selector" -o name | sed 's|^node/||')
fi
[[ ${#nodes[@]} -gt 0 ]] || die "no nodes given or matched (selector: ${selector:-none})"

patch=$("$python" "$here/fake_gpu.py" status-patch --count "$count")
mapfile -t labels < <("$python" "$here/fake_gpu.py" labels --count "$count")
taint=$("$python" "$here/fake_gpu.py" taint)

for node in "${nodes[@]}"; do
  echo "fake-gpu: $node advertises $count x nvidia.com/gpu (fake), labelled and tainted $taint"
  # `kubectl patch --subresource=status` sends the patch to /api/v1/nodes/<node>/status, the endpoint
  # the extended-resource task in the Kubernetes docs uses (there through `kubectl proxy`).
  kc patch node "$node" --subresource=status --type=json -p "$patch" >/dev/null
  kc label node "$node" --overwrite "${labels[@]}" >/dev/null
  kc taint node "$node" --overwrite "$taint" >/dev/null
done

# Bounded wait until the API reports the advertised count as allocatable on every node.
deadline=$((SECONDS + ${FAKE_GPU_TIMEOUT:-60}))
for node in "${nodes[@]}"; do
  until [[ $(kc get node "$node" -o 'jsonpath={.status.allocatable.nvidia\.com/gpu}') == "$count" ]]; do
    if ((SECONDS >= deadline)); then
      die "$node does not report allocatable nvidia.com/gpu=$count after ${FAKE_GPU_TIMEOUT:-60}s"
    fi
    sleep 2
  done
done
echo "fake-gpu: done (${#nodes[@]} node(s))"
