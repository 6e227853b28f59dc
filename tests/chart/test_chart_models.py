"""Model servers as rendered, checked pitfall by pitfall against the scenario values that produced them."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from .chartlib import CHART, Obj, env_of, fullname, image_ref, one, render, scenario_values

MODEL_SCENARIOS = ("01-kind-cpu.yaml", "02-gpu-fleet.yaml", "03-minimal.yaml", "05-overrides.yaml")
PORTS = {"vllm": 8000, "ollama": 11434}
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def models_of(helm: str, scenario: str) -> list[tuple[str, dict[str, Any], Obj]]:
    """(key, values, Deployment) of every model of a scenario."""
    values = scenario_values(scenario)
    objs = render(helm, (scenario,))
    return [
        (key, model, one(objs, "Deployment", f"{fullname(values)}-{key}"))
        for key, model in sorted(values["models"].items())
    ]


def server(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_vllm_command_and_flags(helm: str, scenario: str) -> None:
    for key, model, dep in models_of(helm, scenario):
        if model["engine"] != "vllm":
            continue
        c = server(dep)
        args = c["args"]
        assert c["command"] == ["vllm", "serve"]
        assert args[0] == model["model"]
        assert flag(args, "--served-model-name") == key
        assert flag(args, "--port") == "8000" and flag(args, "--host") == "0.0.0.0"
        v = model.get("vllm", {})
        for value_key, name in [
            ("maxModelLen", "--max-model-len"),
            ("tensorParallelSize", "--tensor-parallel-size"),
            ("dtype", "--dtype"),
            ("gpuMemoryUtilization", "--gpu-memory-utilization"),
            ("toolCallParser", "--tool-call-parser"),
        ]:
            expected = str(v[value_key]) if value_key in v else None
            assert flag(args, name) == expected, (key, name)
        assert ("--enable-auto-tool-choice" in args) == ("toolCallParser" in v), key
        extra = [str(a) for a in model.get("args", [])]
        assert args[len(args) - len(extra):] == extra
        assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_images_default_per_engine_and_override_key_by_key(helm: str, scenario: str) -> None:
    values = scenario_values(scenario)
    for key, model, dep in models_of(helm, scenario):
        image = {**DEFAULTS["images"][model["engine"]], **model.get("image", {})}
        spec = dep["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert c["image"] == image_ref(values, image), key
            assert c["imagePullPolicy"] == image["pullPolicy"], key


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_vllm_shm_is_memory_backed_and_sized(helm: str, scenario: str) -> None:
    checked = 0
    for key, model, dep in models_of(helm, scenario):
        if model["engine"] != "vllm":
            continue
        spec = dep["spec"]["template"]["spec"]
        shm = {v["name"]: v for v in spec["volumes"]}["shm"]
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": model.get("shmSize", "2Gi")}, key
        assert {"name": "shm", "mountPath": "/dev/shm"} in server(dep)["volumeMounts"], key
        checked += 1
    assert checked, f"{scenario} has no vLLM model"


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_model_cache_volume_and_hf_home(helm: str, scenario: str) -> None:
    values = scenario_values(scenario)
    objs = render(helm, (scenario,))
    for key, model, dep in models_of(helm, scenario):
        spec = dep["spec"]["template"]["spec"]
        cache = {v["name"]: v for v in spec["volumes"]}["cache"]
        wanted = model.get("cache", {})
        name = f"{fullname(values)}-{key}"
        if wanted.get("type") == "persistentVolumeClaim":
            # Read-only to servers whose cache a Job preloads.
            assert cache["persistentVolumeClaim"] == {"claimName": name, **({"readOnly": True} if wanted.get("preload") else {})}
            pvc = one(objs, "PersistentVolumeClaim", name)
            assert pvc["spec"]["resources"]["requests"]["storage"] == wanted.get("size", "20Gi")
            assert pvc["spec"]["accessModes"] == wanted.get("accessModes", ["ReadWriteOnce"])
        else:
            assert "emptyDir" in cache
            assert cache["emptyDir"].get("sizeLimit") == wanted.get("size")
        mount = {m["name"]: m["mountPath"] for m in server(dep)["volumeMounts"]}["cache"]
        if model["engine"] == "vllm":
            assert env_of(server(dep))["HF_HOME"]["value"] == mount
        else:
            assert mount == "/root/.ollama"


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_gpu_limits_and_rollout_strategy(helm: str, scenario: str) -> None:
    for key, model, dep in models_of(helm, scenario):
        limits = server(dep).get("resources", {}).get("limits", {})
        gpu = model.get("gpu", {})
        count = gpu.get("count", 0)
        gpu_keys = {k for k in limits if "/" in k}
        if count:
            assert limits[gpu.get("resource", "nvidia.com/gpu")] == str(count), key
            assert len(gpu_keys) == 1
        else:
            assert not gpu_keys, key
        strategy = dep["spec"]["strategy"]
        if "strategy" in model:
            assert strategy == model["strategy"], key
        else:
            # The default is safe for GPU holders: a surge pod would need a spare GPU, and on a full
            # cluster the rollout would never finish. (stackgen writes a surge for CPU-only models.)
            assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def test_gpu_fleet_covers_every_gpu_kind(helm: str) -> None:
    resources = {
        k
        for _, _, dep in models_of(helm, "02-gpu-fleet.yaml")
        for k in server(dep)["resources"].get("limits", {})
        if "/" in k
    }
    assert {"nvidia.com/gpu", "amd.com/gpu", "nvidia.com/mig-1g.5gb"} <= resources


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_probes(helm: str, scenario: str) -> None:
    for key, model, dep in models_of(helm, scenario):
        c = server(dep)
        port = c["ports"][0]["containerPort"]
        assert port == PORTS[model["engine"]]
        paths = {p: c[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
        assert all(c[p]["httpGet"]["port"] == "http" for p in paths)
        start = c["startupProbe"]
        if model["engine"] == "vllm":
            assert paths == dict.fromkeys(paths, "/health") and start["httpGet"]["path"] == "/health"
            # A 70B download plus load takes long; 30 min is the floor before a restart loop.
            assert start["periodSeconds"] * start["failureThreshold"] >= 30 * 60, key
        else:
            assert set(paths.values()) <= {"/", "/api/version"}
            # Started once the model is loaded: `ollama run MODEL ""` loads it and generates nothing.
            assert start["exec"]["command"] == ["/bin/ollama", "run", model["model"], ""]
            assert start["timeoutSeconds"] >= 60


@pytest.mark.parametrize("scenario", MODEL_SCENARIOS)
def test_ollama_pulls_in_an_init_container(helm: str, scenario: str) -> None:
    for _key, model, dep in models_of(helm, scenario):
        if model["engine"] != "ollama":
            continue
        spec = dep["spec"]["template"]["spec"]
        c = server(dep)
        assert "lifecycle" not in c
        env = env_of(c)
        assert env["OLLAMA_HOST"]["value"] == "0.0.0.0:11434"
        o = model.get("ollama", {})
        assert env.get("OLLAMA_CONTEXT_LENGTH", {}).get("value") == (
            str(o["contextLength"]) if "contextLength" in o else None
        )
        assert env.get("OLLAMA_KEEP_ALIVE", {}).get("value") == o.get("keepAlive")
        (init,) = spec["initContainers"]
        script = init["args"][0]
        assert init["command"] == ["/bin/sh", "-c"] and init["image"] == c["image"]
        pull = 'ollama pull --insecure "$OLLAMA_MODEL"' if o.get("insecure") else 'ollama pull "$OLLAMA_MODEL"'
        assert "ollama serve &" in script and pull in script
        assert 'kill "$server"' in script
        assert env_of(init)["OLLAMA_MODEL"]["value"] == model["model"]
        assert {"name": "cache", "mountPath": "/root/.ollama"} in init["volumeMounts"]
        subprocess.run(["sh", "-n", "-c", script], check=True)


def test_placement_is_passed_through(helm: str) -> None:
    for key, model, dep in models_of(helm, "02-gpu-fleet.yaml"):
        spec = dep["spec"]["template"]["spec"]
        for field in ("nodeSelector", "tolerations", "affinity", "runtimeClassName", "priorityClassName"):
            assert spec.get(field) == model.get(field), (key, field)
        assert dep["spec"]["template"]["metadata"].get("annotations") == model.get("podAnnotations")
        assert dep["spec"]["replicas"] == model.get("replicas", 1)


def test_hf_token_from_secret(helm: str) -> None:
    for key, model, dep in models_of(helm, "02-gpu-fleet.yaml"):
        env = env_of(server(dep))
        if "hfTokenSecret" in model:
            ref = model["hfTokenSecret"]
            assert env["HF_TOKEN"] == {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": ref["secretName"], "key": ref.get("key", "token")}},
            }
        else:
            assert "HF_TOKEN" not in env, key
