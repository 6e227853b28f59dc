#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, go-containerregistry's `crane` from its Go module at the version
# versions.yaml pins (`go-containerregistry`). `stackgen bundle --copy` runs it to copy images and Ollama
# models into a registry mirror, and the node tier's air-gap test does so for real.
#
# Usage: scripts/crane/build.sh   -> the LAST line of stdout is a directory holding `crane`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" go-containerregistry)
module=github.com/google/go-containerregistry
go_module_build crane "$module" "$version" "-s -w -X=$module/cmd/crane/cmd.Version=$version" cmd/crane:crane
