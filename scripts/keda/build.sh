#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, KEDA's operator and metrics API server from its Go module, at
# the version versions.yaml pins (`keda`), for the node tier's autoscaling test (tests/node). The admission
# webhooks binary is not built: the node tier installs config/minimal, which has none. The source is first
# trimmed to the scalers the chart renders (trim.py): both binaries then build in 223 s on 2 cores with an empty
# Go build cache, against 680 s for the whole of KEDA (1959 packages to compile, against 3710).
#
# Usage: scripts/keda/build.sh   -> the LAST line of stdout is a directory holding `keda` and `keda-adapter`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" keda)
# Only the scalers the chart renders: trim.py says which, and why.
export GO_MODULE_TRIM=$here/trim.py
module=github.com/kedacore/keda/v2
go_module_build keda "$module" "$version" \
  "-s -w -X=$module/version.Version=${version#v} -X=$module/version.GitCommit=$version" \
  cmd/operator:keda cmd/adapter:keda-adapter
