#!/usr/bin/env bash
# Make kind nodes look like GPU nodes to the scheduler (no real GPU, no device plugin): advertise
# COUNT units of nvidia.com/gpu through the node's status subresource, add the labels GPU feature
# discovery would add and taint the node like managed GPU nodes. The objects themselves are built by
# fake_gpu.py (checked offline by tests/e2e/test_offline.py). Pods asking for the resource get
# scheduled and admitted, but nothing can use a GPU: this is for scheduling tests only.
#
#   usage: scripts/kind/fake-gpu.sh --context CTX (--count N | --remove) (--selector K=V | NODE...)
#
# Idempotent: the JSON patch uses `add` (replaces), labels and taint use --overwrite. --remove turns
# the nodes back into plain workers. Environment: PYTHON, KUBECTL, FAKE_GPU_TIMEOUT (seconds, 60).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/log.sh
source "$here/../lib/log.sh"
python=${PYTHON:-python3}
kubectl=${KUBECTL:-kubectl}
timeout_s=${FAKE_GPU_TIMEOUT:-60}
context=""
count=""
remove=0
selector=""
nodes=()

while [[ $# -gt 0 ]]; do
  case $1 in
    --context) context=${2:?--context needs a value}; shift 2 ;;
    --count) count=${2:?--count needs a value}; shift 2 ;;
    --remove) remove=1; shift ;;
    --selector) selector=${2:?--selector needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p;}' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "unknown option $1" 2 ;;
    *) nodes+=("$1"); shift ;;
  esac
done
[[ -n $context ]] || die "--context is required (never patch whichever cluster happens to be current)" 2
if ((remove)); then
  [[ -z $count ]] || die "--count and --remove exclude each other" 2
else
  [[ $count =~ ^[0-9]+$ ]] || die "--count must be a non-negative integer (or use --remove)" 2
fi
command -v "$python" >/dev/null || die "$python not found (set PYTHON)" 2
command -v "$kubectl" >/dev/null || die "$kubectl not found (set KUBECTL, or run make setup)" 2

kc() { "$kubectl" --context "$context" "$@"; }
gpu_capacity() { kc get node "$1" -o 'jsonpath={.status.capacity.nvidia\.com/gpu}'; }
has_taint() {
  kc get node "$1" -o 'jsonpath={range .spec.taints[*]}{.key}:{.effect}{"\n"}{end}' |
    grep -qx 'nvidia.com/gpu:NoSchedule'
}

if [[ -n $selector ]]; then
  mapfile -t nodes < <(kc get nodes -l "$selector" -o name | sed 's|^node/||')
fi
((${#nodes[@]})) || die "no nodes given or matched (selector: ${selector:-none})" 2

mapfile -t labels < <("$python" "$here/fake_gpu.py" labels --count "${count:-0}")
taint=$("$python" "$here/fake_gpu.py" taint)

for node in "${nodes[@]}"; do
  if ((remove)); then
    log "$node: removing the fake nvidia.com/gpu, its labels and taint"
    if [[ -n $(gpu_capacity "$node") ]]; then
      kc patch node "$node" --subresource=status --type=json \
        -p "$("$python" "$here/fake_gpu.py" status-remove)" >/dev/null
    fi
    kc label node "$node" "${labels[@]/%=*/-}" >/dev/null
    if has_taint "$node"; then kc taint node "$node" "${taint%%=*}:NoSchedule-" >/dev/null; fi
  else
    log "$node advertises $count x nvidia.com/gpu (fake), labelled and tainted $taint"
    # `kubectl patch --subresource=status` sends the patch to /api/v1/nodes/<node>/status, the endpoint
    # the extended-resource task of the Kubernetes docs uses (there through `kubectl proxy`).
    kc patch node "$node" --subresource=status --type=json \
      -p "$("$python" "$here/fake_gpu.py" status-patch --count "$count")" >/dev/null
    kc label node "$node" --overwrite "${labels[@]}" >/dev/null
    kc taint node "$node" --overwrite "$taint" >/dev/null
  fi
done

# Bounded wait until the API reports what was asked on every node (empty: resource gone).
want=${count:-}
deadline=$((SECONDS + timeout_s))
for node in "${nodes[@]}"; do
  until [[ $(kc get node "$node" -o 'jsonpath={.status.allocatable.nvidia\.com/gpu}') == "$want" ]]; do
    ((SECONDS < deadline)) || die "$node: allocatable nvidia.com/gpu is not '${want}' after ${timeout_s}s" 2
    sleep 2
  done
done
log "done (${#nodes[@]} node(s))"
