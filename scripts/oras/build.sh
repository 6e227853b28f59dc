#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, the ORAS CLI from its Go module at the version versions.yaml pins
# (`oras`), for bench/mirror.py only: it copies the same image as crane does, side by side, which is how
# `stackgen bundle --copy` came to use crane.
#
# Usage: scripts/oras/build.sh   -> the LAST line of stdout is a directory holding `oras`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" oras)
module=oras.land/oras
go_module_build oras "$module" "$version" "-s -w -X=$module/internal/version.Version=${version#v}" cmd/oras:oras
