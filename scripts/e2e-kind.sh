#!/usr/bin/env bash
# `make e2e-kind`: the kind end-to-end tier. Creates a 3-node kind cluster (scripts/kind-up.sh),
# runs the pytest tests marked `kind` (tests/e2e/: install the built-in kind-cpu example, verify it
# with `stackgen verify` and both AutoGen configs, `helm test`, upgrade with a model added,
# uninstall and check nothing is left; then the fake-GPU scheduling and rollout scenario) and
# deletes the cluster again.
#
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default stackgen-e2e)
#   KEEP_CLUSTER=1      keep the cluster afterwards (for debugging; scripts/kind-down.sh deletes it)
#   E2E_LOGS=DIR        where `kind export logs` writes node logs when the tests fail (default out/e2e-logs)
#   PYTEST_ARGS         extra pytest arguments, e.g. "-k gpu"
#   STACKGEN_E2E_ROLLOUT_TIMEOUT  seconds allowed for each rollout (default 1500: first pulls are big)
#   E2E_PYTHON          the Python with pytest and stackgen (default: python from .venv)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/log.sh
source "$repo/scripts/lib/log.sh"
cd "$repo"
if [[ -d .tools/bin ]]; then PATH="$repo/.tools/bin:$PATH"; fi
if [[ -d .venv/bin ]]; then PATH="$repo/.venv/bin:$PATH"; fi
export PATH

name=${KIND_CLUSTER_NAME:-stackgen-e2e}
python=${E2E_PYTHON:-python}  # .venv/bin/python, first on PATH
logs=${E2E_LOGS:-$repo/out/e2e-logs}

# --- preflight: every missing tool named at once ---------------------------------------------------
missing=()
for tool in docker kind kubectl helm "$python" stackgen; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  die "missing: ${missing[*]}
  docker: https://docs.docker.com/engine/install/   kind: go install sigs.k8s.io/kind@v0.30.0
  kubectl, helm, python, stackgen: make setup-test (scripts/install-tools.sh and .venv)" 3
fi

# --- vLLM CPU needs AVX-512 on x86 -----------------------------------------------------------------
# The x86 CPU image is built for AVX-512 (vLLM's CPU install docs: avx512f recommended, AVX2 only
# with limited features). Without it the vLLM model is left out and everything else still runs;
# kind nodes share the host kernel, so the host's /proc/cpuinfo is what the pods see.
if [[ $(uname -m) == x86_64 ]] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  export STACKGEN_E2E_VLLM=1
  log "CPU has AVX-512 (avx512f): the vLLM CPU model is part of the stack"
else
  export STACKGEN_E2E_VLLM=0
  log "no AVX-512 on this $(uname -m) CPU (avx512f missing in /proc/cpuinfo): the vLLM model is removed
    from the kind-cpu spec for this run; the Ollama model, the gateway and the AutoGen configs are still tested"
fi

status=1
cleanup() {
  if ((status != 0)) && kind get clusters 2>/dev/null | grep -x -- "$name" >/dev/null; then
    log "tests failed: exporting node logs to $logs"
    kind export logs "$logs" --name "$name" >/dev/null 2>&1 || log "kind export logs failed"
  fi
  if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
    log "KEEP_CLUSTER=1: cluster '$name' kept (context kind-$name)"
  else
    scripts/kind-down.sh --name "$name" || log "cluster deletion failed"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "cluster"
# No --fake-gpu here: the GPU test fakes the node itself for exactly the GPUs it uses, and until
# then the CPU stack may use both workers (the vLLM and Ollama pods want a few CPUs each).
scripts/kind-up.sh --name "$name"

log "tests (pytest -m kind)"
export STACKGEN_E2E_CLUSTER=$name
# -s: rollout progress is printed live; -p no:cacheprovider keeps the tree clean.
read -r -a extra <<<"${PYTEST_ARGS:-}"
if "$python" -m pytest tests/e2e -m kind -s -v -p no:cacheprovider "${extra[@]}"; then
  status=0
fi
if ((status == 0)); then log "passed"; else log "FAILED"; fi
# The script's status is this test's (not an explicit `exit`: shellcheck 0.11 then misreads the trap).
((status == 0))
