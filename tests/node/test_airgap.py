"""An air-gapped install on the real node: every image and weight from the cluster's own mirrors, downloaded once.

The node reaches nothing but this machine's link addresses, so the cluster here is air-gapped already. The
test stands up what an air-gapped site runs, and nothing the stack could otherwise lean on:
- a fresh registry mirror (distribution, with the Ollama blob redirects of tests/engines/registry.py);
- a Hugging Face mirror: olah (PyPI), serving the tiny Qwen2 of the real-engine tier from a local git
  repository under the model's Hub id, with no upstream (`offline`);
- a staging registry standing for the internet: the node tier's model registry, which holds the tiny Ollama
  model, and into which the test pushes the node's image archives under their sources' paths.

Then `stackgen bundle --copy --from <staging>` fills the mirror with crane. The one image not copied is vLLM's
(6.6 GB, minutes of CI for no new path): containerd is given it under the mirror's name with `ctr images
tag`. Every other image the pods run is pulled by containerd from the mirror (hosts.toml, plain HTTP),
the pull path a cluster uses; the kubelet records the digest it pulled.

The steps run in order on one install, each a test so that a failure names its step.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stackgen.bundle import staged
from stackgen.localstack import ManagedProcess, free_port, spawn, wait_until
from stackgen.spec import Stack as Spec
from tests.e2e import specs
from tests.e2e.kube import say
from tests.e2e.stack import Stack
from tests.engines.engines import ollama_bin_dir
from tests.engines.fresh_venv import fresh_venv
from tests.engines.registry import Registry, http_ok, start_registry
from tests.pins import pin
from tests.support.prebuild import built
from tests.support.wait import poll

from .conftest import NodeCluster
from .network import FILES_IP, HOST_IP
from .runtime import normalized
from .stacks import SEEDED_CLASS, STACKGEN, give_to, ready, seeded_volume

EXAMPLE = "kind-cpu"
PROFILE_CPU = {"cpu-small": "200m", "cpu-vllm": "350m"}
VLLM = "vllm-small"
# The images pushed to staging: every one the stack renders but vLLM's.
STAGED = ("litellm", "ollama", "curl")
HUB_TIMEOUT = 60.0


@dataclass
class Airgap:
    cluster: NodeCluster
    stack: Stack
    spec: dict[str, Any]
    spec_file: Path
    out: Path
    work: Path
    mirror: Registry
    staging: Registry
    crane: Path
    hub_log: Path
    volume: str

    def bundle(self) -> tuple[int, list[dict[str, Any]], str]:
        """`stackgen bundle --copy --from <staging>`, then again as text (copying nothing more): the first run's
        exit status and JSON report, and the second's summary."""
        argv = [STACKGEN, "bundle", str(self.spec_file), "--copy", "--from", self.staging.host, "--insecure",
                "--crane", str(self.crane)]
        start = time.monotonic()
        as_json = subprocess.run([*argv, "--format", "json"], capture_output=True, text=True, timeout=900, check=False)
        took = time.monotonic() - start
        assert as_json.stdout, as_json.stderr
        text = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        say(f"bundle --copy took {took:.1f}s, then {time.monotonic() - start - took:.1f}s: "
            f"{text.stdout.splitlines()[-1]}")
        return as_json.returncode, json.loads(as_json.stdout), text.stdout

    def weight_gets(self) -> list[str]:
        """The Hub mirror's access log: every GET of a file of the vLLM model."""
        repo = self.spec["models"][1]["model"]
        return re.findall(rf'"GET /{re.escape(repo)}/resolve/\S+', self.hub_log.read_text())

    def pods(self, component: str) -> list[dict[str, Any]]:
        return [p for p in self.stack.kube.items("pods", "-n", self.stack.namespace)
                if p["metadata"]["labels"].get("app.kubernetes.io/component") == component]


def _hub_mirror(cluster: NodeCluster, work: Path, repo: str) -> tuple[ManagedProcess, str, Path]:
    """olah on this machine's link address, serving `repo` from a git repository of the tiny Qwen2 alone."""
    git = work / "hub" / "mirrors" / "models" / repo
    git.mkdir(parents=True)
    for f in cluster.tiny_qwen.iterdir():
        (git / f.name).write_bytes(f.read_bytes())
    for argv in (["init", "-q", "-b", "main"], ["add", "."],
                 ["-c", "user.name=stackgen", "-c", "user.email=tests@stackgen.invalid", "commit", "-qm", repo]):
        subprocess.run(["git", *argv], cwd=git, check=True, capture_output=True)
    port = free_port(HOST_IP)
    config = work / "hub" / "olah.toml"
    config.write_text(
        f'[basic]\nhost = "{HOST_IP}"\nport = {port}\nrepos-path = "{work / "hub" / "repos"}"\n'
        f'mirror-scheme = "http"\nmirror-netloc = "{HOST_IP}:{port}"\nmirror-lfs-netloc = "{HOST_IP}:{port}"\n'
        f'mirrors-path = ["{work / "hub" / "mirrors"}"]\n\n[accessibility]\noffline = true\n')
    olah = fresh_venv(f"pip install olah=={pin('olah')}") / "bin" / "olah-cli"
    log = work / "hub" / "olah.log"
    proc = spawn("olah", [str(olah), "-c", str(config), "--log-path", str(work / "hub" / "logs")], log)
    url = f"http://{HOST_IP}:{port}"
    wait_until(lambda: http_ok(f"{url}/api/models/{repo}/revision/main"), proc, HUB_TIMEOUT, "olah")
    return proc, url, log


def airgap_spec(cluster: NodeCluster, mirror: str, hub: str) -> dict[str, Any]:
    """kind-cpu behind the mirrors: Ollama's model by its library name, vLLM's preloaded into a claim that every
    replica mounts on this one node."""
    spec = specs.example_spec(STACKGEN, EXAMPLE)
    spec["name"] = spec["namespace"] = "airgap"
    spec["mirror"] = {"registry": mirror, "insecure": True, "huggingFace": hub}
    for name, cpu in PROFILE_CPU.items():
        spec["profiles"][name]["cpu"] = cpu
    ollama, vllm = spec["models"]
    ollama["model"] = cluster.ollama_model.split("/", 2)[2]  # tiny:latest, as in Ollama's library
    vllm.update(cache={"type": "persistentVolumeClaim", "storageClassName": SEEDED_CLASS, "size": "1Gi",
                       "accessModes": ["ReadWriteOnce"], "preload": True}, routing="service")
    return spec


def _stage(cluster: NodeCluster, spec: dict[str, Any], staging: Registry, crane: Path) -> None:
    """The node's image archives into staging, each where `bundle --from` will look for it."""
    where = {item.source: ref for item, ref in staged(Spec.model_validate(spec), staging.host).items()
             if item.kind == "image"}
    for name in STAGED:
        ref = cluster.refs[name]
        subprocess.run([str(crane), "push", "--insecure", str(cluster.node.images / f"{name}.tar"), where[ref]],
                       check=True, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def airgap(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airgap]:
    work = tmp_path_factory.mktemp("airgap")
    crane = built("crane/build.sh") / "crane"
    mirror = start_registry(ollama_bin_dir() / "registry", work / "mirror", host=HOST_IP, files_host=FILES_IP,
                            deletes=True)
    hub = None
    try:
        repo = specs.example_spec(STACKGEN, EXAMPLE)["models"][1]["model"]
        hub, hub_url, hub_log = _hub_mirror(node_cluster, work, repo)
        spec = airgap_spec(node_cluster, mirror.host, hub_url)
        start = time.monotonic()
        _stage(node_cluster, spec, node_cluster.registry, crane)
        say(f"staged {', '.join(STAGED)} in {time.monotonic() - start:.0f}s")
        spec_file = specs.write_spec(spec, work / "spec.yaml")
        out = specs.render(STACKGEN, spec_file, work / "out")
        values = specs.load_yaml(out / "values.yaml")
        kube = node_cluster.kube("helm3")
        stack = Stack(kube=kube, stackgen=STACKGEN, release=values["fullnameOverride"], namespace=spec["namespace"])
        vllm_image = next(o for o in specs.manifest_objects(out) if o["kind"] == "Deployment" and
                          o["metadata"]["name"] == f"{stack.release}-{VLLM}")["spec"]["template"]["spec"]
        node_cluster.node.ctr("images", "tag", "--force", normalized(node_cluster.refs["vllm-cpu"]),
                              vllm_image["containers"][0]["image"])
        node_cluster.node.trust_registry(mirror.host)
        # An empty volume for the claim, the pods' own (the kubelet applies no fsGroup to a hostPath).
        volume = work / "cache"
        volume.mkdir()
        give_to(volume, vllm_image["securityContext"]["runAsUser"], vllm_image["securityContext"]["fsGroup"])
        name = f"{stack.release}-{VLLM}-cache"
        kube.apply(seeded_volume(name, volume, stack.namespace, f"{stack.release}-{VLLM}"))
        yield Airgap(node_cluster, stack, spec, spec_file, out, work, mirror, node_cluster.registry, crane, hub_log,
                     name)
        stack.teardown()
        kube.run("delete", "persistentvolume", name, "--ignore-not-found", check=False)
    finally:
        if hub is not None:
            hub.stop()
        mirror.stop()


def test_bundle_fills_the_mirror_and_a_second_run_copies_nothing(airgap: Airgap) -> None:
    status, first, _ = airgap.bundle()
    by = {(r["kind"], r["result"]) for r in first}
    say("bundle: " + "; ".join(f"{r['result']} {r['kind']} {r['target']}" for r in first))
    vllm_ref = next(r["target"] for r in first if r["kind"] == "image" and "vllm" in r["target"])
    missing = [r for r in first if r["result"] == "missing"]
    # vLLM's image alone is not staged (see the module's docstring): bundle names it and exits 1.
    assert [r["target"] for r in missing] == [vllm_ref] and status == 1, missing
    assert ("ollama", "copied") in by and ("huggingface", "served") in by, first
    assert sum(r["result"] == "copied" and r["kind"] == "image" for r in first) == len(STAGED), first
    for r in first:
        if r["result"] == "copied":
            there = subprocess.run([str(airgap.crane), "digest", "--insecure", r["target"]], capture_output=True,
                                   text=True, check=True).stdout.strip()
            assert there == r["digest"], r
    status, second, summary = airgap.bundle()
    assert not [r for r in second if r["result"] == "copied"], second
    assert {r["target"]: r["digest"] for r in second if r["result"] == "present"} == {
        r["target"]: r["digest"] for r in first if r["result"] == "copied"}
    assert "copied" not in summary.splitlines()[-1], summary


def test_install_pulls_from_the_mirror_and_the_preload_job_fills_the_cache_once(airgap: Airgap) -> None:
    stack = airgap.stack
    values = specs.load_yaml(airgap.out / "values.yaml")
    stack.prepare(values)
    before = set(airgap.cluster.node.ctr("images", "list", "-q").split())
    assert not {ref for ref in before if ref.startswith(airgap.mirror.host) and "vllm" not in ref}, before
    start = time.monotonic()
    stack.helm("install", airgap.out / "values.yaml")
    stack.wait(airgap.out)
    say(f"installed from the mirrors in {time.monotonic() - start:.0f}s")
    job = _preload_job(airgap)
    assert job["status"].get("succeeded") == 1, job["status"]
    gets = airgap.weight_gets()
    files = {f.name for f in airgap.cluster.tiny_qwen.iterdir()}
    assert {g.rsplit("/", 1)[1] for g in gets} == files, gets
    assert len(gets) == len(files), f"a file was downloaded twice: {gets}"
    # Every image a pod runs came from the mirror: the kubelet records the digest it pulled from there.
    for pod in stack.kube.items("pods", "-n", stack.namespace):
        for status in pod["status"].get("containerStatuses", []) + pod["status"].get("initContainerStatuses", []):
            assert status["image"].startswith(airgap.mirror.host + "/"), status
            if "vllm" not in status["image"]:
                assert status["imageID"].startswith(airgap.mirror.host + "/"), status
    gateway, port = f"{stack.release}-gateway", int(values["gateway"]["port"])
    stack.verify(airgap.spec_file, airgap.out, gateway, port)


def _preload_job(airgap: Airgap) -> dict[str, Any]:
    jobs = [j for j in airgap.stack.kube.items("jobs", "-n", airgap.stack.namespace)
            if j["metadata"]["name"].startswith(f"{airgap.stack.release}-{VLLM}-preload-")]
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    return jobs[0]


def _seconds(since: str, until: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return time.mktime(time.strptime(until, fmt)) - time.mktime(time.strptime(since, fmt))


def test_a_second_replica_and_an_upgrade_download_nothing(airgap: Airgap) -> None:
    """`helm upgrade` to two vLLM replicas: the same preload Job stands (not run again), the new pod mounts the
    filled cache read-only and starts, and the Hub mirror sees no request for a weight."""
    job_before, gets_before = _preload_job(airgap), airgap.weight_gets()
    grown = yaml.safe_load(airgap.spec_file.read_text())
    grown["models"][1]["replicas"] = 2
    grown_file = specs.write_spec(grown, airgap.work / "grown.yaml")
    out = specs.render(STACKGEN, grown_file, airgap.work / "grown")
    airgap.stack.helm("upgrade", out / "values.yaml")
    airgap.stack.wait(out)
    pods = airgap.pods(VLLM)
    assert len(pods) == 2 and all(ready(p) for p in pods), [p["metadata"]["name"] for p in pods]
    job = _preload_job(airgap)
    assert job["metadata"]["uid"] == job_before["metadata"]["uid"] and job["status"].get("succeeded") == 1
    assert airgap.weight_gets() == gets_before, "the upgrade downloaded weights again"
    newest = max(pods, key=lambda p: p["metadata"]["creationTimestamp"])
    ready_at = next(c["lastTransitionTime"] for c in newest["status"]["conditions"] if c["type"] == "Ready")
    mounts = {m["name"]: m.get("readOnly", False) for c in newest["spec"]["containers"] for m in c["volumeMounts"]}
    assert mounts["cache"] is True, mounts
    say(f"the preload Job's download took {_seconds(job['status']['startTime'], job['status']['completionTime']):.0f}s; "
        f"the second replica was Ready {_seconds(newest['metadata']['creationTimestamp'], ready_at):.0f}s after it "
        "was made, with no download")


def test_an_image_missing_from_the_mirror_is_named_and_bundle_puts_it_back(airgap: Airgap) -> None:
    """The gateway's image deleted from the mirror and from the node: its new pod fails its pull with the
    reference named (never a silent wait), and `bundle --copy` copies exactly that image back."""
    stack, kube = airgap.stack, airgap.stack.kube
    image = airgap.pods("gateway")[0]["spec"]["containers"][0]["image"]
    repo, tag = image[len(airgap.mirror.host) + 1:].rsplit(":", 1)
    digest = httpx.head(f"{airgap.mirror.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ", ".join(MANIFESTS)},
                        timeout=10).headers["Docker-Content-Digest"]
    assert httpx.delete(f"{airgap.mirror.url}/v2/{repo}/manifests/{digest}", timeout=10).status_code == 202
    airgap.cluster.node.ctr("images", "rm", image)
    kube.run("rollout", "restart", "-n", stack.namespace, f"deployment/{stack.release}-gateway")

    def pull_failed() -> tuple[bool, str]:
        waiting = [s["state"]["waiting"] for p in airgap.pods("gateway")
                   for s in p["status"].get("containerStatuses", []) if "waiting" in s.get("state", {})]
        named = [w for w in waiting if w.get("reason") in ("ErrImagePull", "ImagePullBackOff")]
        return bool(named), json.dumps(waiting)

    poll("the gateway's new pod failing its pull", pull_failed, 90, 2)
    waiting = [s["state"]["waiting"] for p in airgap.pods("gateway") for s in p["status"].get("containerStatuses", [])
               if s.get("state", {}).get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")]
    assert any(image in w.get("message", "") for w in waiting), waiting
    status, report, _ = airgap.bundle()
    copied = [r["target"] for r in report if r["result"] == "copied"]
    assert copied == [image], report
    stack.wait(airgap.out)


MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
