"""One stack's life on the kind cluster: install, verify, upgrade, uninstall, check nothing is left."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.kube import delete_kept_caches
from tests.support.paths import CHART
from tests.support.wait import poll

from . import objects, specs
from .kube import POLL_S, Kube, port_forward, say

MASTER_KEY_ENV = "STACKGEN_E2E_MASTER_KEY"


def rollout_timeout() -> float:
    # First install pulls the vLLM CPU, Ollama and LiteLLM images and the models: minutes, not seconds.
    return float(os.environ.get("STACKGEN_E2E_ROLLOUT_TIMEOUT", "1500"))


def master_key_secret(values: dict[str, Any], namespace: str, key: str) -> dict[str, Any]:
    """The Secret the chart expects (named in values.gateway.masterKey), holding `key`."""
    ref = values["gateway"]["masterKey"]
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": ref["secretName"], "namespace": namespace},
        "stringData": {ref.get("key") or "master-key": key},
    }


def new_master_key() -> str:
    # LiteLLM only accepts master keys that start with "sk-".
    return "sk-" + secrets.token_urlsafe(32)


@dataclass
class Stack:
    kube: Kube
    stackgen: str
    release: str
    namespace: str
    master_key: str = field(default_factory=new_master_key, repr=False)
    installed: bool = False
    # The chart and the flags that go with it: the checkout's, or oci://... --version V --verify --keyring K.
    chart: tuple[str, ...] = (str(CHART),)

    def prepare(self, values: dict[str, Any]) -> frozenset[tuple[str, str]]:
        """Namespace plus the Secrets the user creates, not the chart: the master key, and the chart's Redis
        password when it runs Redis."""
        self.kube.create_namespace(self.namespace)
        made = [master_key_secret(values, self.namespace, self.master_key)]
        if values.get("redis", {}).get("enabled"):
            ref = values["redis"]["passwordSecret"]
            made.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": ref["secretName"], "namespace": self.namespace},
                         "stringData": {ref["key"]: secrets.token_urlsafe(24)}})
        for secret in made:
            self.kube.apply(secret)
        return frozenset(("Secret", secret["metadata"]["name"]) for secret in made)

    def helm(self, verb: str, values_file: Path, timeout: float = 600) -> None:
        say(f"helm {verb} {self.release} -n {self.namespace} -f {values_file}")
        self.kube.helm_run(verb, self.release, *self.chart, "-f", str(values_file),
                           "-n", self.namespace, "--timeout", "10m", timeout=timeout)
        self.installed = True

    def wait(self, out: Path) -> list[str]:
        names = specs.workload_names(specs.manifest_objects(out))
        assert names, f"no Deployment in {out}/manifests"
        self.kube.wait_rollouts(self.namespace, names, rollout_timeout())
        return names

    def verify(self, spec_file: Path, out: Path, gateway: str, port: int) -> None:
        """`stackgen verify` through a port-forward to the gateway Service, AutoGen configs included.

        The rendered AutoGen configs name the in-cluster gateway URL, which this machine cannot
        reach; an agent outside the cluster renders them for its own URL (`--gateway-url`), so the
        AutoGen checks use configs rendered for the port-forward.
        """
        with port_forward(self.kube, self.namespace, gateway, port) as url:
            agent_out = out.parent / f"{out.name}-agent"
            subprocess.run([self.stackgen, "render", str(spec_file), "-o", str(agent_out),
                            "--gateway-url", f"{url}/v1", "--no-manifests"],
                           check=True, capture_output=True, text=True, timeout=120)
            env = {**os.environ, MASTER_KEY_ENV: self.master_key}
            say(f"stackgen verify --gateway {url}/v1 {spec_file.name}")
            proc = subprocess.run(
                [self.stackgen, "verify", "--gateway", f"{url}/v1", "--api-key-env", MASTER_KEY_ENV,
                 "--autogen-dir", str(agent_out / "autogen"), str(spec_file)],
                env=env, capture_output=True, text=True, timeout=900)
            print(proc.stdout, flush=True)
            assert proc.returncode == 0, f"stackgen verify failed:\n{proc.stdout}\n{proc.stderr}"

    def helm_test(self) -> None:
        """`helm test`. No --logs: the chart deletes a passed test pod (hook-succeeded) and --logs
        then fails looking for it (helm/helm#9098); a failed pod stays, and its logs are printed."""
        say(f"helm test {self.release}")
        proc = subprocess.run([*self.kube.helm_argv(), "test",
                               self.release, "-n", self.namespace, "--timeout", "5m"],
                              capture_output=True, text=True, timeout=400)
        print(proc.stdout, flush=True)
        assert proc.returncode == 0, (
            f"helm test failed:\n{proc.stderr}\n{self.kube.diagnostics(self.namespace)}")

    def uninstall_leaves_nothing(self, keep: frozenset[tuple[str, str]],
                                 retained: frozenset[str] = frozenset()) -> None:
        """`helm uninstall` leaves the chart's model caches (helm.sh/resource-policy: keep) and nothing else of
        its own; after the command docs/operations.md gives for those, every namespaced object must be gone, apart
        from the namespace's defaults and what the test itself created (`keep`), and so must every
        PersistentVolume bound to the namespace but those the test made with reclaim policy Retain (`retained`)."""
        claims = sorted(("PersistentVolumeClaim", o["metadata"]["name"]) for o in self.kube.items(
            "pvc", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.release}"))
        say(f"helm uninstall {self.release}")
        self.kube.helm_run("uninstall", self.release, "-n", self.namespace, "--wait",
                           "--timeout", "5m", timeout=400)
        self.installed = False

        # Pods and ReplicaSets go by background garbage collection after their owners: give them time.
        def only_caches() -> tuple[bool, str]:
            left = objects.leftovers(self.kube.remaining(self.namespace), keep)
            return left == [f"{kind}/{name}" for kind, name in claims], f"left: {left}; kept caches expected: {claims}"

        poll(f"{self.namespace} holding only its kept caches after helm uninstall", only_caches, 180, POLL_S, say)
        self.kube.run(*delete_kept_caches(self.namespace, self.release), timeout=150)

        def emptied() -> tuple[bool, str]:
            left = objects.leftovers(self.kube.remaining(self.namespace), keep)
            pvs = [pv for pv in objects.pvs_claimed_from(self.kube.items("persistentvolumes"), self.namespace)
                   if pv not in retained]
            return not left and not pvs, f"left behind: {left}; PersistentVolumes still claimed from it: {pvs}"

        poll(f"{self.namespace} holding only its defaults once the caches are deleted", emptied, 180, POLL_S, say)

    def teardown(self) -> None:
        """Best effort after a failure: never hides the failure itself."""
        if self.installed:
            subprocess.run([*self.kube.helm_argv(), "uninstall",
                            self.release, "-n", self.namespace, "--timeout", "5m"],
                           capture_output=True, timeout=400, check=False)
        self.kube.delete_namespace(self.namespace)
