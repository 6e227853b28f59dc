#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, KEDA's operator and metrics API server from its Go module, at
# the version versions.yaml pins (`keda`), for the node tier's autoscaling test (tests/node). The admission
# webhooks binary is not built: the node tier installs config/minimal, which has none.
#
# Usage: scripts/keda/build.sh   -> the LAST line of stdout is a directory holding `keda` and `keda-adapter`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" keda)
module=github.com/kedacore/keda/v2
go_module_build keda "$module" "$version" \
  "-s -w -X=$module/version.Version=${version#v} -X=$module/version.GitCommit=$version" \
  cmd/operator:keda cmd/adapter:keda-adapter
