"""kubectl, helm and stackgen against the test control plane; every call and wait is bounded."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO, TOOLS
from tests.support.tools import HELMS, helm, stackgen

from .controlplane import ControlPlane
from .fakes import FakeProvisioner

EXAMPLES_DIR = REPO / "generator" / "stackgen" / "examples"


def say(message: str) -> None:
    print(f"cluster: {message}", flush=True)


def helm_binaries() -> dict[str, str]:
    """helm3 and helm4 by name, as `make setup-test` installs them."""
    return {name: helm(name) for name in HELMS}


@dataclass
class Cluster:
    cp: ControlPlane
    provisioner: FakeProvisioner
    helms: dict[str, str]
    home: Path

    @property
    def kubeconfig(self) -> Path:
        return self.cp.kubeconfig

    def kubectl(self, *args: str, timeout: float = 60, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cp.client.run(*args, timeout=timeout, stdin=stdin, check=check)

    def get(self, *args: str) -> dict[str, Any]:
        return self.cp.client.get(*args)

    def items(self, *args: str) -> list[dict[str, Any]]:
        return self.cp.client.items(*args)

    def apply(self, obj: dict[str, Any]) -> None:
        self.cp.client.apply(obj, server_side=True)

    def helm(self, helm: str, *args: str, timeout: float = 300,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        # Helm's own config, cache and data stay inside the test's directory.
        env = os.environ | {
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CONFIG_HOME": str(self.home / "helm" / "config"),
            "HELM_CACHE_HOME": str(self.home / "helm" / "cache"),
            "HELM_DATA_HOME": str(self.home / "helm" / "data"),
        }
        done = subprocess.run([self.helms[helm], *args], capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{helm} {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def create_namespace(self, name: str) -> None:
        self.cp.client.create_namespace(name)

    def delete_namespace(self, name: str, timeout: float = 120) -> None:
        self.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true",
                     f"--timeout={int(timeout)}s", timeout=timeout + 10)

    def create_secret(self, namespace: str, name: str, keys: set[str]) -> None:
        self.kubectl("create", "secret", "generic", name, "-n", namespace,
                     *[f"--from-literal={k}=test-{name}-{k}" for k in sorted(keys)])


def render(spec: str | Path, out: Path, namespace: str | None = None) -> Path:
    """`stackgen render` of an example name or a spec file; returns the output directory. With `namespace`, the
    spec is rendered for that namespace instead of its own (its values name it, and the chart refuses any other)."""
    if namespace is not None:
        source = Path(spec) if Path(spec).is_file() else EXAMPLES_DIR / f"{spec}.yaml"
        data = yaml.safe_load(source.read_text())
        spec = out.parent / f"{source.stem}-in-{namespace}.yaml"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(yaml.safe_dump({**data, "namespace": namespace}, sort_keys=False))
    env = os.environ | {"PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([stackgen(), "render", str(spec), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    if done.returncode != 0:
        raise AssertionError(f"stackgen render {spec} failed:\n{done.stdout}\n{done.stderr}")
    return out


def referenced_secrets(values: dict[str, Any]) -> dict[str, set[str]]:
    """Secrets the rendered values refer to (name -> keys): a real cluster has them before install."""
    refs: dict[str, set[str]] = {}

    def add(ref: dict[str, Any] | None, default_key: str) -> None:
        if ref and ref.get("secretName"):
            refs.setdefault(ref["secretName"], set()).add(ref.get("key", default_key))

    gateway = values.get("gateway", {})
    add(gateway.get("masterKey"), "master-key")
    for ref in (gateway.get("secretEnv") or {}).values():
        add(ref, "")
    for model in (values.get("models") or {}).values():
        add(model.get("hfTokenSecret"), "token")
        for ref in (model.get("secretEnv") or {}).values():
            add(ref, "")
    return refs
