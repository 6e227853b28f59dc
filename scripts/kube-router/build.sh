#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, kube-router from its Go module at the version versions.yaml
# pins (`kube-router`), for the node tier (tests/node): its network-policy controller alone enforces the
# chart's NetworkPolicies on the real node (`--run-firewall`; the CNI bridge and kube-proxy keep routing and
# Services, so kube-router's router and service proxy stay off).
#
# A test part only: the Go module proxy here serves v2.1.0 and no later release, and security flaws are
# reported against v2.1.0. It runs inside the test node's network namespace for the length of a session.
#
# Usage: scripts/kube-router/build.sh   -> the LAST line of stdout is a directory holding `kube-router`
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/gomodule.sh
source "$here/../lib/gomodule.sh"

version=$("$here/../versions.py" kube-router)
module=github.com/cloudnativelabs/kube-router/v2
go_module_build kube-router "$module" "$version" "-s -w -X=$module/pkg/version.Version=$version" \
  cmd/kube-router:kube-router
