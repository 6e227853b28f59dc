"""Checks a kind cluster config the way kind v0.30 reads it, without kind.

Written from kind's documented v1alpha4 `Cluster` fields (kind.sigs.k8s.io/docs/user/configuration/
and the field list of sigs.k8s.io/kind/pkg/apis/config/v1alpha4): kind decodes configs strictly, so
an unknown or misspelt field is an error, and then validates names, roles, ports, subnets and the
proxy mode. Also our own rule: every node image is pinned by digest.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

API_VERSION = "kind.x-k8s.io/v1alpha4"

_STR, _BOOL, _INT = "string", "bool", "int"
_PATCH6902 = {"group": _STR, "version": _STR, "kind": _STR, "patch": _STR}
_MOUNT = {"containerPath": _STR, "hostPath": _STR, "readOnly": _BOOL, "selinuxRelabel": _BOOL,
          "propagation": _STR}
_PORT_MAPPING = {"containerPort": _INT, "hostPort": _INT, "listenAddress": _STR, "protocol": _STR}
_NODE = {
    "role": _STR, "image": _STR, "labels": ("map", _STR), "extraMounts": ("list", _MOUNT),
    "extraPortMappings": ("list", _PORT_MAPPING), "kubeadmConfigPatches": ("list", _STR),
    "kubeadmConfigPatchesJSON6902": ("list", _PATCH6902),
}
_NETWORKING = {
    "ipFamily": _STR, "apiServerPort": _INT, "apiServerAddress": _STR, "podSubnet": _STR,
    "serviceSubnet": _STR, "disableDefaultCNI": _BOOL, "kubeProxyMode": _STR,
    "dnsSearch": ("list", _STR),
}
_CLUSTER = {
    "kind": _STR, "apiVersion": _STR, "name": _STR, "nodes": ("list", _NODE),
    "networking": _NETWORKING, "featureGates": ("map", _BOOL), "runtimeConfig": ("map", _STR),
    "kubeadmConfigPatches": ("list", _STR), "kubeadmConfigPatchesJSON6902": ("list", _PATCH6902),
    "containerdConfigPatches": ("list", _STR), "containerdConfigPatchesJSON6902": ("list", _STR),
}

_NAME_RE = re.compile(r"^[a-z0-9.-]+$")
_PINNED_IMAGE_RE = re.compile(r"^kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$")
_ROLES = {"control-plane", "worker"}
_IP_FAMILIES = {"ipv4", "ipv6", "dual"}
_PROXY_MODES = {"iptables", "ipvs", "nftables", "none"}
_PROPAGATIONS = {"None", "HostToContainer", "Bidirectional"}
_PROTOCOLS = {"TCP", "UDP", "SCTP"}


def _check_shape(value: Any, shape: Any, where: str, errors: list[str]) -> None:
    if shape == _STR:
        ok = isinstance(value, str)
    elif shape == _BOOL:
        ok = isinstance(value, bool)
    elif shape == _INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(shape, tuple):
        container, item_shape = shape
        if container == "list":
            if not isinstance(value, list):
                errors.append(f"{where}: expected a list")
                return
            for i, item in enumerate(value):
                _check_shape(item, item_shape, f"{where}[{i}]", errors)
        else:
            if not isinstance(value, dict):
                errors.append(f"{where}: expected a map")
                return
            for key, item in value.items():
                _check_shape(key, _STR, f"{where} key {key!r}", errors)
                _check_shape(item, item_shape, f"{where}.{key}", errors)
        return
    else:  # a struct: strict decoding rejects unknown fields
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a map")
            return
        for key, item in value.items():
            if key not in shape:
                errors.append(f"{where or 'config'}: unknown field {key!r}")
            else:
                _check_shape(item, shape[key], f"{where}.{key}" if where else key, errors)
        return
    if not ok:
        errors.append(f"{where}: expected {shape}, got {type(value).__name__}")


def _port_ok(port: int) -> bool:
    return -1 <= port <= 65535  # -1 lets the container engine pick


def _subnet_errors(value: str, family: str, what: str) -> list[str]:
    try:
        nets = [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",")]
    except ValueError as err:
        return [f"networking.{what}: {err}"]
    versions = {n.version for n in nets}
    if family == "dual":
        if len(nets) > 2 or (len(nets) == 2 and versions != {4, 6}):
            return [f"networking.{what}: dual stack takes one CIDR or one of each family"]
    elif len(nets) > 1:
        return [f"networking.{what}: single stack takes one CIDR"]
    elif family == "ipv4" and versions != {4}:
        return [f"networking.{what}: expected an IPv4 CIDR"]
    elif family == "ipv6" and versions != {6}:
        return [f"networking.{what}: expected an IPv6 CIDR"]
    return []


def validate(config: Any) -> list[str]:
    """Every problem kind would report for this config (empty list: valid)."""
    errors: list[str] = []
    if not isinstance(config, dict):
        return ["config is not a map"]
    _check_shape(config, _CLUSTER, "", errors)
    if config.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion must be {API_VERSION}")
    if config.get("kind") != "Cluster":
        errors.append("kind must be Cluster")
    name = config.get("name", "kind")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        errors.append(f"name {name!r} must match {_NAME_RE.pattern}")
    net = config.get("networking") or {}
    if isinstance(net, dict):
        family = net.get("ipFamily", "ipv4")
        if family not in _IP_FAMILIES:
            errors.append(f"networking.ipFamily {family!r} not in {sorted(_IP_FAMILIES)}")
        if net.get("kubeProxyMode", "iptables") not in _PROXY_MODES:
            errors.append(f"networking.kubeProxyMode not in {sorted(_PROXY_MODES)}")
        port = net.get("apiServerPort", 0)
        if isinstance(port, int) and not _port_ok(port):
            errors.append(f"networking.apiServerPort {port} out of range")
        for what in ("podSubnet", "serviceSubnet"):
            if isinstance(net.get(what), str):
                errors += _subnet_errors(net[what], family, what)
    nodes = config.get("nodes") or [{"role": "control-plane"}]  # kind's default: one control plane
    if isinstance(nodes, list):
        errors += _node_errors(nodes)
    return errors


def _node_errors(nodes: list[Any]) -> list[str]:
    errors: list[str] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        role = node.get("role", "control-plane")
        if role not in _ROLES:
            errors.append(f"nodes[{i}].role {role!r} not in {sorted(_ROLES)}")
        for j, mount in enumerate(node.get("extraMounts") or []):
            if isinstance(mount, dict) and mount.get("propagation", "None") not in _PROPAGATIONS:
                errors.append(f"nodes[{i}].extraMounts[{j}].propagation not in {sorted(_PROPAGATIONS)}")
        for j, mapping in enumerate(node.get("extraPortMappings") or []):
            if not isinstance(mapping, dict):
                continue
            for field in ("containerPort", "hostPort"):
                value = mapping.get(field, 0)
                if isinstance(value, int) and not _port_ok(value):
                    errors.append(f"nodes[{i}].extraPortMappings[{j}].{field} {value} out of range")
            if str(mapping.get("protocol", "TCP")).upper() not in _PROTOCOLS:
                errors.append(f"nodes[{i}].extraPortMappings[{j}].protocol not in {sorted(_PROTOCOLS)}")
    roles = [n.get("role", "control-plane") for n in nodes if isinstance(n, dict)]
    if "control-plane" not in roles:
        errors.append("nodes: at least one control-plane node is required")
    return errors


def unpinned_images(config: dict[str, Any]) -> list[str]:
    """Nodes whose image is missing or not `kindest/node:vX.Y.Z@sha256:<digest>`."""
    return [
        f"nodes[{i}]: {node.get('image')!r}"
        for i, node in enumerate(config.get("nodes") or [])
        if not _PINNED_IMAGE_RE.match(str(node.get("image", "")))
    ]
