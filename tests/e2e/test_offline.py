"""The kind tier's code paths that need no cluster, run by `make test` (never skipped): the kind
config against kind's schema, the fake-GPU objects, AVX-512 detection and spec trimming through the
real `stackgen render`, the GPU scenario's values through real `helm template`, the object readings
the cluster tests rely on, and the scripts (bash -n, shellcheck, their messages when tools are
missing)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.paths import REPO, SCRIPTS
from tests.support.tools import stackgen as stackgen_command

from . import gpu, kindconfig, objects, specs
from .tools import KIND_CONFIG, NO_DOCKER

# Plain code, no cluster: part of `make unit`.
pytestmark = pytest.mark.unit

# The same set scripts/verify/shellcheck.sh checks.
SHELL_SCRIPTS = sorted([*SCRIPTS.rglob("*.sh"), REPO / ".ci" / "run"])
fake = gpu.fake_gpu_module()


# --- kind config ----------------------------------------------------------------------------------

def test_kind_config_is_valid_for_kind_and_pinned() -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert kindconfig.validate(config) == []
    assert kindconfig.unpinned_images(config) == []
    pools = [n.get("labels", {}).get(gpu.POOL_LABEL) for n in config["nodes"] if n["role"] == "worker"]
    assert sorted(pools) == ["cpu", "gpu"], "scripts and tests select the workers by these labels"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c: c.update(nodez=[]), "unknown field 'nodez'"),
    (lambda c: c["nodes"][1].update(role="master"), "role 'master'"),
    (lambda c: c.update(nodes=[n for n in c["nodes"] if n["role"] != "control-plane"]), "control-plane"),
    (lambda c: c.update(networking={"kubeProxyMode": "userspace"}), "kubeProxyMode"),
    (lambda c: c.update(networking={"podSubnet": "10.244.0.0/33"}), "podSubnet"),
    (lambda c: c["nodes"][0].update(extraPortMappings=[{"containerPort": 70000}]), "out of range"),
    (lambda c: c["nodes"][0].update(labels={"a": 1}), "expected string"),
    (lambda c: c.update(apiVersion="kind.sigs.k8s.io/v1alpha3"), "apiVersion"),
    (lambda c: c.update(name="Stackgen_E2E"), "name"),
])
def test_kind_config_validator_catches_mistakes(change, expected: str) -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    change(config)
    errors = kindconfig.validate(config)
    assert any(expected in e for e in errors), errors


def test_unpinned_node_image_is_reported() -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    config["nodes"][2]["image"] = "kindest/node:v1.34.0"
    assert kindconfig.unpinned_images(config) == ["nodes[2]: 'kindest/node:v1.34.0'"]


# --- fake GPU objects -----------------------------------------------------------------------------

def _apply_json_patch(doc: dict, ops: list[dict]) -> dict:
    """RFC 6902 `add` / `remove` on object members, pointer tokens unescaped per RFC 6901."""
    for op in ops:
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        target = doc
        for token in parents:
            target = target[token]
        if op["op"] == "add":
            target[last] = op["value"]
        else:
            assert op["op"] == "remove" and last in target, op  # remove of a missing member fails
            del target[last]
    return doc


def _node(capacity: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "stackgen-e2e-worker2"},
            "status": {"capacity": dict(capacity), "allocatable": dict(capacity)}}


def test_fake_gpu_patch_advertises_count_on_a_valid_node() -> None:
    patch = fake.status_patch(2)
    assert [op["path"] for op in patch] == ["/status/capacity/nvidia.com~1gpu",
                                            "/status/allocatable/nvidia.com~1gpu"]
    node = _apply_json_patch(_node({"cpu": "4", "memory": "16Gi", "pods": "110"}), patch)
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    node["metadata"]["labels"] = fake.node_labels(2)
    node["spec"] = {"taints": [fake.gpu_taint().as_object()]}
    kubernetes_validate.validate(node, "1.34", strict=True)
    # Applying it again changes nothing (kind-up.sh may run twice); the remove patch undoes it.
    assert _apply_json_patch(json.loads(json.dumps(node)), patch) == node
    plain = _apply_json_patch(node, fake.status_remove_patch())
    assert plain["status"]["capacity"] == {"cpu": "4", "memory": "16Gi", "pods": "110"}
    assert plain["status"]["allocatable"] == plain["status"]["capacity"]


def test_fake_gpu_cli_prints_what_the_functions_build() -> None:
    script = str(SCRIPTS / "kind" / "fake_gpu.py")
    run = lambda *a: subprocess.run([sys.executable, script, *a], capture_output=True, text=True)  # noqa: E731
    assert json.loads(run("status-patch", "--count", "1").stdout) == fake.status_patch(1)
    assert run("taint").stdout.strip() == "nvidia.com/gpu=present:NoSchedule"
    assert dict(line.split("=", 1) for line in run("labels", "--count", "1").stdout.split()) == \
        fake.node_labels(1)
    refused = run("status-patch", "--count", "1", "--resource", "kubernetes.io/gpu")
    assert refused.returncode == 2 and "reserved" in refused.stderr


@pytest.mark.parametrize("count", [-1, True, 1.5])
def test_fake_gpu_patch_rejects_bad_counts(count) -> None:
    with pytest.raises(ValueError):
        fake.status_patch(count)


def test_json_pointer_escaping() -> None:
    assert fake.json_pointer_token("a/b~c") == "a~1b~0c"


# --- tolerations and rollout strategy readings -----------------------------------------------------

TAINT = fake.gpu_taint().as_object()


@pytest.mark.parametrize(("toleration", "ok"), [
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, True),
    ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
    ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}, True),
    ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, False),
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"operator": "Exists"}, True),
    ({"key": "", "operator": "Equal"}, False),
    ({"key": "gpu", "operator": "Exists"}, False),
])
def test_tolerates_follows_the_api_rules(toleration: dict, ok: bool) -> None:
    assert objects.tolerates(toleration, TAINT) is ok
    assert (objects.untolerated([toleration], [TAINT]) == []) is ok


@pytest.mark.parametrize(("strategy", "ok"), [
    ({"type": "Recreate"}, True),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, True),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "100%"}}, True),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, False),
    ({"type": "RollingUpdate"}, False),  # API default: maxSurge 25%
    ({}, False),
])
def test_rolls_without_surge(strategy: dict, ok: bool) -> None:
    assert objects.rolls_without_surge(strategy) is ok


def test_leftovers_ignore_only_namespace_defaults_and_what_the_test_made() -> None:
    def obj(kind: str, name: str) -> dict:
        return {"kind": kind, "metadata": {"name": name}}
    items = [obj("ConfigMap", "kube-root-ca.crt"), obj("ServiceAccount", "default"),
             obj("Secret", "kind-cpu-litellm-master-key"), obj("PersistentVolumeClaim", "kind-cpu-ollama"),
             obj("Pod", "kind-cpu-test")]
    assert objects.leftovers(items, frozenset({("Secret", "kind-cpu-litellm-master-key")})) == [
        "PersistentVolumeClaim/kind-cpu-ollama", "Pod/kind-cpu-test"]
    pvs: list[dict[str, Any]] = [{"metadata": {"name": "pv-1"}, "spec": {"claimRef": {"namespace": "stackgen"}}},
           {"metadata": {"name": "pv-2"}, "spec": {"claimRef": {"namespace": "other"}}},
           {"metadata": {"name": "pv-3"}, "spec": {}}]
    assert objects.pvs_claimed_from(pvs, "stackgen") == ["pv-1"]


def test_rollout_reading_matches_kubectl_rollout_status() -> None:
    deploy: dict[str, Any] = {"metadata": {"name": "m", "generation": 3}, "spec": {"replicas": 2},
              "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                         "availableReplicas": 2, "readyReplicas": 2}}
    assert objects.deployment_done(deploy)
    for stale in ({"observedGeneration": 2}, {"updatedReplicas": 1}, {"replicas": 3},
                  {"availableReplicas": 1}):
        assert not objects.deployment_done({**deploy, "status": {**deploy["status"], **stale}})
    pod = {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "kind-cpu-ollama-small-7d9f8c"}]},
           "spec": {"containers": [{}]},
           "status": {"phase": "Pending", "containerStatuses": [
               {"ready": False, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    assert objects.owner_deployment(pod) == "kind-cpu-ollama-small"
    assert "ImagePullBackOff" in objects.progress_line(
        {**deploy, "metadata": {"name": "kind-cpu-ollama-small", "generation": 1}, "status": {}}, [pod])


# --- AVX-512 and the specs the e2e run renders ---------------------------------------------------

def test_avx512_detection() -> None:
    flags = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {}\n"
    assert specs.has_avx512(flags.format("avx512f avx512bw"), "x86_64")
    assert not specs.has_avx512(flags.format("avx512_vnni"), "x86_64")
    assert not specs.has_avx512(flags.format("avx512f"), "aarch64")
    # The driver's grep and the Python reading agree on this machine.
    grep = subprocess.run(["grep", "-qw", "avx512f", "/proc/cpuinfo"]).returncode == 0
    assert specs.host_has_avx512() == (grep and platform.machine() == "x86_64")


@pytest.fixture(scope="module")
def stackgen() -> str:
    return stackgen_command()


@pytest.fixture(scope="module")
def example(stackgen: str) -> specs.Spec:
    return specs.example_spec(stackgen, "kind-cpu")


def _gateway_models(out: Path) -> set[str]:
    return {m["model_name"] for m in specs.load_yaml(out / "litellm" / "config.yaml")["model_list"]}


def test_kind_cpu_example_is_what_the_e2e_run_expects(stackgen: str, example: specs.Spec,
                                                     tmp_path: Path) -> None:
    """The e2e run relies on these: a vLLM model on the CPU image with its KV-cache size set (vLLM's
    CPU backend takes the KV cache from host memory, VLLM_CPU_KVCACHE_SPACE in GiB) and an Ollama
    model to keep when there is no AVX-512; the namespace and the master-key Secret it creates."""
    out = specs.render(stackgen, specs.write_spec(example, tmp_path / "spec.yaml"), tmp_path / "out")
    values = specs.load_yaml(out / "values.yaml")
    vllm = [m for m in values["models"].values() if m["engine"] == "vllm"]
    assert vllm and all("cpu" in m["image"]["repository"] for m in vllm)
    assert all(int(m["env"]["VLLM_CPU_KVCACHE_SPACE"]) >= 1 for m in vllm)
    assert any(m["engine"] == "ollama" for m in values["models"].values())
    assert values["gateway"]["masterKey"]["secretName"]
    assert specs.namespace_of(example, specs.manifest_objects(out)) == example["namespace"]


def test_spec_without_avx512_renders_without_vllm(stackgen: str, example: specs.Spec,
                                                  tmp_path: Path) -> None:
    engines = {n: m.get("engine") for n, m in specs.models_of(example).items()}
    assert "vllm" in engines.values() and "ollama" in engines.values(), engines
    trimmed, dropped = specs.drop_engine(example, "vllm")
    assert dropped == [n for n, e in engines.items() if e == "vllm"]
    out = specs.render(stackgen, specs.write_spec(trimmed, tmp_path / "spec.yaml"), tmp_path / "out")
    values = specs.load_yaml(out / "values.yaml")
    assert {m["engine"] for m in values["models"].values()} == {"ollama"}
    assert not set(dropped) & _gateway_models(out)
    autogen = (out / "autogen" / "OAI_CONFIG_LIST").read_text() + (
        out / "autogen" / "model_clients.json").read_text()
    assert not any(name in autogen for name in dropped)


def test_upgrade_spec_adds_a_model_everywhere(stackgen: str, example: specs.Spec, tmp_path: Path) -> None:
    source = specs.first_model_with_engine(example, "ollama")
    grown = specs.add_model_copy(example, source, "ollama-extra")
    out = specs.render(stackgen, specs.write_spec(grown, tmp_path / "spec.yaml"), tmp_path / "out")
    values = specs.load_yaml(out / "values.yaml")
    assert set(values["models"]) == set(specs.models_of(example)) | {"ollama-extra"}
    assert "ollama-extra" in _gateway_models(out)
    fullname = values.get("fullnameOverride")
    assert f"{fullname}-ollama-extra" in specs.workload_names(specs.manifest_objects(out))


def test_gpu_scenario_renders_a_schedulable_surge_free_deployment(stackgen: str, tmp_path: Path) -> None:
    """The fake-GPU spec through real `stackgen render` (and so real `helm template`)."""
    spec_file = specs.write_spec(gpu.gpu_spec(["--max-num-seqs", "4"]), tmp_path / "spec.yaml")
    out = specs.render(stackgen, spec_file, tmp_path / "out")
    deploy = gpu.model_deployment(specs.manifest_objects(out))
    pod = deploy["spec"]["template"]["spec"]
    assert gpu.gpu_limit(pod, fake.GPU_RESOURCE) == 1
    assert objects.rolls_without_surge(deploy["spec"].get("strategy", {}))
    assert objects.untolerated(pod.get("tolerations", []), [TAINT]) == []
    labels = fake.node_labels(1)
    assert all(labels.get(k) == v for k, v in pod.get("nodeSelector", {}).items()), pod.get("nodeSelector")
    assert pod["containers"][0]["image"] == gpu.PAUSE_IMAGE
    argv = [*pod["containers"][0].get("command", []), *pod["containers"][0].get("args", [])]
    assert argv[argv.index("--max-num-seqs") + 1] == "4", argv
    assert specs.namespace_of(yaml.safe_load(spec_file.read_text()), specs.manifest_objects(out)) == \
        gpu.NAMESPACE


# --- scripts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_syntax(script: Path) -> None:
    # Libraries (scripts/lib) are sourced, not run: they have no shebang and need no execute bit.
    sourced = script.parent.name == "lib"
    assert sourced or os.access(script, os.X_OK), f"{script} is not executable"
    assert sourced != script.read_text().startswith("#!"), f"{script}: shebang only on scripts that run"
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.fixture()
def bare_path(tmp_path: Path) -> str:
    """A PATH with only what the scripts need before their tool checks: no docker, no kind."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dirname", "sed", "grep", "uname", "awk"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        (bindir / tool).symlink_to(found.stdout.strip())
    return str(bindir)


@pytest.mark.parametrize(("script", "expected"), [
    ("kind-up.sh", "docker not found on PATH"),
    ("kind-down.sh", "docker not found on PATH"),
    ("e2e-kind.sh", "missing: docker kind"),
])
def test_scripts_say_docker_is_missing(script: str, expected: str, bare_path: str) -> None:
    env = {"PATH": bare_path, "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(["/bin/bash", str(SCRIPTS / script)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert expected in proc.stderr, proc.stderr


def test_kind_up_says_kind_is_missing(bare_path: str) -> None:
    # With another provider configured the docker check is skipped, so the kind check speaks.
    env = {"PATH": bare_path, "KIND_EXPERIMENTAL_PROVIDER": "podman"}
    proc = subprocess.run(["/bin/bash", str(SCRIPTS / "kind-up.sh")], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 3 and "go install sigs.k8s.io/kind@v0.30.0" in proc.stderr, proc.stderr


def _pytest_kind_tests(path: str, cluster: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STACKGEN_E2E_CLUSTER"}
    env["PATH"] = path
    if cluster:
        env["STACKGEN_E2E_CLUSTER"] = cluster
    return subprocess.run([sys.executable, "-m", "pytest", "tests/e2e", "-m", "kind", "-rs", "-q",
                           "-p", "no:cacheprovider"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_kind_tests_skip_with_the_reason_without_docker(bare_path: str) -> None:
    proc = _pytest_kind_tests(bare_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout and NO_DOCKER in proc.stdout, proc.stdout


def test_make_e2e_kind_refuses_to_pass_by_skipping(bare_path: str) -> None:
    proc = _pytest_kind_tests(bare_path, cluster="stackgen-e2e")
    assert proc.returncode == 4 and NO_DOCKER in proc.stderr, proc.stdout + proc.stderr


def test_workflows_run_the_make_targets_with_pinned_actions() -> None:
    for name, command in (("ci.yml", ".ci/run"), ("e2e-kind.yml", "make e2e-kind")):
        workflow = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
        steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
        assert any(step.get("run", "").strip() == command for step in steps), name
        for step in steps:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    e2e = yaml.safe_load((REPO / ".github" / "workflows" / "e2e-kind.yml").read_text())["jobs"]["e2e-kind"]
    assert e2e["env"]["KIND_VERSION"] == "v0.30.0"
    assert any('go install "sigs.k8s.io/kind@${KIND_VERSION}"' in s.get("run", "") for s in e2e["steps"])
