"""The node's NetworkPolicy engine: kube-router's network-policy controller alone (built from its Go module by
scripts/kube-router/build.sh; a test part, see there), run like kube-proxy as a process in the node's network
namespace. It turns the NetworkPolicies into iptables rules and ipsets of that namespace, where the pods'
bridge is, so a connection the policies do not admit never reaches the pod. kube-router's routing, service
proxy and CNI stay off: the bridge plugin and kube-proxy keep those jobs.

It reads the API as `stackgen:kube-router` (tests/cluster/pki.py), bound here to a role that may only read
what the controller watches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cluster.controlplane import SERVICE_CIDR
from tests.cluster.pki import CLIENTS, NODE_NAME

USER = CLIENTS["kube-router"][0]
# The filter table's chain kube-router keeps every pod's rules behind: there once it has synced.
FORWARD_CHAIN = "KUBE-ROUTER-FORWARD"


def rbac() -> list[dict[str, Any]]:
    """Read-only access to what the controller's informers list and watch."""
    name = "stackgen:kube-router"
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces", "nodes", "services", "endpoints"],
                    "verbs": read},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
                   {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]},
    ]


def argv(binary: Path, kubeconfig: Path) -> list[str]:
    return [
        str(binary), f"--kubeconfig={kubeconfig}", f"--hostname-override={NODE_NAME}",
        "--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--enable-cni=false",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # No health server: the node tier watches the process, and the chain below tells that it synced.
        "--health-port=0",
    ]
