"""Objects that make a kind node look like a GPU node to the scheduler.

kind nodes have no GPUs and no device plugin, so nothing advertises `nvidia.com/gpu`. For scheduling
tests we advertise it ourselves, the way Kubernetes documents for extended resources ("Advertise
Extended Resources for a Node", kubernetes.io/docs/tasks/administer-cluster/extended-resource-node/):
a JSON patch (RFC 6902) on the node's `status` subresource. The kubelet keeps extended resources it
does not manage and derives allocatable from capacity, so we set both and the scheduler sees the new
count at once instead of after the next node-status sync.

Labels and taint imitate real GPU nodes: `nvidia.com/gpu.product` / `.count` / `.present` are the
labels NVIDIA GPU feature discovery puts on GPU nodes, and `nvidia.com/gpu=present:NoSchedule` is the
taint managed clusters (GKE) put on them, so only pods that tolerate it land there.

Standard library only: scripts/kind/fake-gpu.sh runs this file with any python3.

    python3 scripts/kind/fake_gpu.py status-patch --count 1 [--resource nvidia.com/gpu]
    python3 scripts/kind/fake_gpu.py status-remove [--resource nvidia.com/gpu]
    python3 scripts/kind/fake_gpu.py labels --count 1 [--product NAME]    # k=v per line
    python3 scripts/kind/fake_gpu.py taint [--resource nvidia.com/gpu]     # kubectl taint argument
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass

GPU_RESOURCE = "nvidia.com/gpu"
# Not a real product: anything that reads the label must see the node is fake.
FAKE_PRODUCT = "NVIDIA-FAKE-KIND-GPU"

# Extended resource names are qualified names outside the kubernetes.io domain (prefix/name, where the
# prefix is a DNS subdomain and the name a DNS-1123-ish label).
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_RESOURCE_RE = re.compile(rf"^{_PREFIX}/{_NAME}$")
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def as_kubectl_arg(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"

    def as_object(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


def json_pointer_token(token: str) -> str:
    """Escape one JSON-pointer reference token (RFC 6901 section 3: `~` -> `~0`, then `/` -> `~1`)."""
    return token.replace("~", "~0").replace("/", "~1")


def check_resource_name(resource: str) -> None:
    if not _RESOURCE_RE.match(resource) or len(resource) > 253:
        raise ValueError(f"{resource!r} is not an extended resource name (domain/name)")
    domain = resource.split("/", 1)[0]
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        raise ValueError(f"{resource!r}: the kubernetes.io domain is reserved for native resources")


def status_patch(count: int, resource: str = GPU_RESOURCE) -> list[dict[str, str]]:
    """JSON patch for `PATCH /api/v1/nodes/<node>/status` advertising `count` units of `resource`.

    `add` replaces an existing member, so applying the patch twice is harmless (idempotent kind-up).
    Quantities are strings in the API.
    """
    check_resource_name(resource)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"GPU count must be a non-negative integer, got {count!r}")
    token = json_pointer_token(resource)
    return [
        {"op": "add", "path": f"/status/{field}/{token}", "value": str(count)}
        for field in ("capacity", "allocatable")
    ]


def status_remove_patch(resource: str = GPU_RESOURCE) -> list[dict[str, str]]:
    """JSON patch taking the advertised resource away again (turns the fake GPU node back into a
    plain worker). `remove` fails on a missing member, so apply it only where the resource is set."""
    check_resource_name(resource)
    token = json_pointer_token(resource)
    return [{"op": "remove", "path": f"/status/{field}/{token}"} for field in ("capacity", "allocatable")]


def node_labels(count: int, product: str = FAKE_PRODUCT) -> dict[str, str]:
    if not _LABEL_VALUE_RE.match(product) or len(product) > 63:
        raise ValueError(f"{product!r} is not a valid label value")
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(count),
    }


def gpu_taint(resource: str = GPU_RESOURCE) -> Taint:
    check_resource_name(resource)
    return Taint(key=resource, value="present", effect="NoSchedule")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Print fake-GPU node objects for kubectl.")
    sub = parser.add_subparsers(dest="what", required=True)
    patch = sub.add_parser("status-patch", help="JSON patch for the node status subresource")
    patch.add_argument("--count", type=int, required=True)
    patch.add_argument("--resource", default=GPU_RESOURCE)
    remove = sub.add_parser("status-remove", help="JSON patch removing the resource again")
    remove.add_argument("--resource", default=GPU_RESOURCE)
    labels = sub.add_parser("labels", help="node labels, one key=value per line")
    labels.add_argument("--count", type=int, required=True)
    labels.add_argument("--product", default=FAKE_PRODUCT)
    taint = sub.add_parser("taint", help="taint in kubectl's key=value:Effect form")
    taint.add_argument("--resource", default=GPU_RESOURCE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        if args.what == "status-patch":
            print(json.dumps(status_patch(args.count, args.resource), separators=(",", ":")))
        elif args.what == "status-remove":
            print(json.dumps(status_remove_patch(args.resource), separators=(",", ":")))
        elif args.what == "labels":
            for key, value in node_labels(args.count, args.product).items():
                print(f"{key}={value}")
        else:
            print(gpu_taint(args.resource).as_kubectl_arg())
    except ValueError as err:
        print(f"fake_gpu: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
