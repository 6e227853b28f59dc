#!/usr/bin/env bash
# Install the Debian packages the tests run, when missing (CI and developers run as root here):
# - prometheus: evaluates every alert, dashboard query and autoscaling trigger (tests/engines/test_monitoring.py);
# - redis-server: the gateway's shared state (tests/stack/test_shared_state.py), the release the chart's
#   Redis image pins (versions.yaml `redis`);
# - containerd, runc, containernetworking-plugins, iptables, conntrack: the real node of tests/node, and ipset
#   for its NetworkPolicy engine (kube-router, scripts/kube-router/build.sh);
# - debootstrap: the root filesystems of that node's images (scripts/node/build.sh);
# - gnupg: the key the signed chart is signed with (tests/cluster/test_oci_chart.py, tests/support/signing.py);
# - socat: a relay with an idle timeout in front of the gateway, as a load balancer's (tests/node/test_autoscaling.py).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/lib/cache.sh"

need_debs redis-server prometheus containerd runc containernetworking-plugins iptables conntrack ipset debootstrap \
  gnupg socat
