#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, LeaderWorkerSet's controller manager from its Go module, at the
# version versions.yaml pins (`lws`): the controller that makes a group's pods (a leader, a StatefulSet of
# workers), restarts a group whole, and runs the webhooks that give each pod its leader's address and its index.
# Built on KEDA's version set, as the HTTP add-on is: its Kubernetes libraries and controller-runtime then come
# compiled from Go's build cache after scripts/keda/build.sh (docs/testing.md).
#
# Usage: scripts/lws/build.sh   -> the LAST line of stdout is a directory holding `manager`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" lws)
module=sigs.k8s.io/lws
keda_version=$("$here/../versions.py" keda)
export GO_MODULE_ALIGN=github.com/kedacore/keda/v2@$keda_version
go_module_build lws "$module" "$version" "-s -w -X=$module/pkg/version.GitVersion=$version" cmd:manager
