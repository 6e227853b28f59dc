"""kubectl and helm against one cluster (kind, or the node tier's): every call names the context (and
the kubeconfig, when not the user's) and has a time limit."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stackgen.localstack import free_port
from tests.support.kube import Kubectl

from . import objects

POLL_S = 5.0
HEARTBEAT_S = 30.0


def say(message: str) -> None:
    print(f"e2e: {message}", flush=True)


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    """Says how long the block took: `<what> in <N>s` (teardowns, which no test times otherwise)."""
    began = time.monotonic()
    try:
        yield
    finally:
        say(f"{what} in {time.monotonic() - began:.0f}s")


@dataclass(frozen=True, kw_only=True)
class Kube(Kubectl):
    """kubectl (tests/support/kube.py) and helm against the cluster."""

    helm: str

    def helm_argv(self) -> list[str]:
        config = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return [self.helm, *config, "--kube-context", self.context]

    def helm_run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.helm_argv(), *args],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args[:2])} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def delete_namespace(self, namespace: str) -> None:
        # Pods first: the namespace controller, finding pods still terminating, waits out their whole grace
        # period (620 s for a model pod) before it looks again, even when they are gone in seconds.
        self.run("wait", "--for=delete", "pods", "--all", "-n", namespace, "--timeout=300s", timeout=330, check=False)
        self.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
                 "--timeout=300s", timeout=330, check=False)

    def diagnostics(self, namespace: str) -> str:
        """What a human needs when a wait times out: pods, recent events, logs of unready pods."""
        parts = []
        for args in (("get", "pods", "-o", "wide"), ("get", "events", "--sort-by=.lastTimestamp")):
            parts.append(self.run(*args, "-n", namespace, check=False).stdout)
        for pod in self.items("pods", "-n", namespace):
            if not objects.pod_state(pod).startswith("Running") or not all(
                    s.get("ready") for s in pod.get("status", {}).get("containerStatuses", [])):
                name = pod["metadata"]["name"]
                parts.append(f"--- logs {name} (last 40 lines)")
                parts.append(self.run("logs", name, "-n", namespace, "--all-containers",
                                      "--tail=40", check=False).stdout)
        return "\n".join(parts)

    def wait_rollouts(self, namespace: str, names: list[str], timeout: float) -> None:
        """Wait until every named Deployment is rolled out; print progress; fail after `timeout`."""
        start = time.monotonic()
        last_text, last_print = "", 0.0
        while True:
            elapsed = time.monotonic() - start
            deploys = {d["metadata"]["name"]: d for d in self.items("deployments", "-n", namespace)}
            pods = self.items("pods", "-n", namespace)
            missing = [n for n in names if n not in deploys]
            lines = [objects.progress_line(deploys[n], pods) for n in names if n in deploys]
            lines += [f"  [..] {n}: not created yet" for n in missing]
            text = "\n".join(lines)
            if text != last_text or elapsed - last_print >= HEARTBEAT_S:
                say(f"rollout [{elapsed:4.0f}s / {timeout:.0f}s]\n{text}")
                last_text, last_print = text, elapsed
            if not missing and all(objects.deployment_done(deploys[n]) for n in names):
                say(f"all {len(names)} rollouts done in {elapsed:.0f}s")
                return
            if elapsed >= timeout:
                raise AssertionError(f"rollouts not done after {timeout:.0f}s:\n{text}\n\n"
                                     f"{self.diagnostics(namespace)}")
            time.sleep(POLL_S)

    def remaining(self, namespace: str) -> list[dict[str, Any]]:
        """Every listable namespaced object in `namespace` (PVCs, Secrets, hook pods included),
        events excepted."""
        kinds = self.run("api-resources", "--verbs=list", "--namespaced", "-o", "name").stdout.split()
        kinds = [k for k in kinds if k not in objects.RECORD_RESOURCES]
        return self.items(",".join(kinds), "-n", namespace, "--ignore-not-found")


@contextlib.contextmanager
def port_forward(kube: Kube, namespace: str, service: str, port: int,
                 timeout: float = 60) -> Iterator[str]:
    """`kubectl port-forward svc/SERVICE` on a free local port; yields http://127.0.0.1:PORT."""
    local = free_port()
    # Output goes to a file: kubectl logs every connection and a full pipe would stall it.
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [*kube.kubectl_argv(), "-n", namespace, "port-forward", "--address",
             "127.0.0.1", f"svc/{service}", f"{local}:{port}"],
            stdout=log, stderr=subprocess.STDOUT, text=True)

        def exited() -> str:
            """kubectl's exit status and the end of its log, or "" while it runs."""
            if proc.poll() is None:
                return ""
            log.seek(0)
            return f"port-forward to svc/{service} exited ({proc.returncode}):\n{log.read()[-4000:]}"

        try:
            deadline = time.monotonic() + timeout
            while True:
                if why := exited():
                    raise AssertionError(why)
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), 1):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"port-forward to svc/{service} not listening after {timeout}s")
                time.sleep(0.5)
            say(f"port-forward svc/{service}:{port} -> 127.0.0.1:{local}")
            try:
                yield f"http://127.0.0.1:{local}"
            except BaseException as err:
                if why := exited():
                    err.add_note(why)
                raise
            if why := exited():  # what was sent through it may have been lost while it was in use: say why
                raise AssertionError(why)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
