#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, KEDA's HTTP add-on from its Go module, at the version versions.yaml
# pins (`http-add-on`): its interceptor, which holds the calls to a model that sleeps at zero replicas until one is
# Ready, and its external scaler, which tells KEDA of them (stackgen.wake). Its operator is not built: it reconciles
# the HTTPScaledObject, which stackgen does not render; the interceptor and the scaler read InterceptorRoutes
# themselves.
#
# Usage: scripts/http-add-on/build.sh   -> the LAST line of stdout is a directory holding `interceptor` and `scaler`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" http-add-on)
module=github.com/kedacore/http-add-on
# Built on KEDA's version set (scripts/keda/build.sh builds first in the node tier's chain): its Kubernetes
# libraries and controller-runtime then come compiled from Go's build cache (docs/testing.md).
keda_version=$("$here/../versions.py" keda)
export GO_MODULE_ALIGN=github.com/kedacore/keda/v2@$keda_version
go_module_build http-add-on "$module" "$version" "-s -w -X=$module/pkg/build.version=$version" \
  interceptor:interceptor scaler:scaler
