"""`cache.preload`: a Job fills a model's claim once, before any server starts; the servers wait for it, then
read the volume read-only and offline. Refused where it cannot work, with the fix. (The node tier's air-gap test
runs it for real.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from stackgen.bundle import items, staged
from stackgen.cli import cli
from stackgen.load import load_text
from tests.support.rendered import HUB, REGISTRY, containers, objects, validate

SPEC = f"""\
name: team
namespace: llm
mirror: {{registry: "{REGISTRY}", huggingFace: "{HUB}"}}
profiles:
  cpu: {{cpu: "2", memory: 8Gi}}
models:
  - name: qwen
    engine: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    profile: cpu
    replicas: 2
    adapters: [{{name: sql, source: my-org/sql-lora, rank: 8}}]
    cache: {{type: persistentVolumeClaim, size: 5Gi, accessModes: [ReadWriteMany], preload: true}}
"""


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def test_the_job_downloads_every_hub_repository_into_the_claim_and_marks_it_done() -> None:
    objs = objects(SPEC)
    [job] = by_kind(objs, "Job")
    pod = job["spec"]["template"]["spec"]
    [claim] = pod["volumes"][:1]
    assert claim["persistentVolumeClaim"] == {"claimName": "team-qwen"}, claim  # writable: the Job fills it
    script = pod["containers"][0]["args"][0]
    assert "hf download --quiet 'Qwen/Qwen2.5-0.5B-Instruct'" in script and "'my-org/sql-lora'" in script, script
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["HF_ENDPOINT"] == HUB and "HF_HUB_OFFLINE" not in env, env
    assert env["MARKER"].startswith(env["HF_HOME"] + "/") and env["MARKER"].endswith(f"/{job['metadata']['name']}.done")


def test_servers_wait_for_the_job_then_read_the_cache_read_only_and_offline() -> None:
    objs = objects(SPEC)
    [job] = by_kind(objs, "Job")
    [server] = [o for o in by_kind(objs, "Deployment") if o["metadata"]["name"] == "team-qwen"]
    pod = server["spec"]["template"]["spec"]
    wait = pod["initContainers"][0]
    waits_for = {e["name"]: e["value"] for e in wait["env"]}
    job_env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    # The same file, each where it mounts the volume.
    marker = f".stackgen/{job['metadata']['name']}.done"
    assert job_env["MARKER"] == f"{job_env['HF_HOME']}/{marker}", job_env
    assert waits_for == {"MARKER": f"/preloaded/{marker}", "JOB": job["metadata"]["name"]}, waits_for
    cache = next(v for v in pod["volumes"] if v["name"] == "cache")
    assert cache["persistentVolumeClaim"] == {"claimName": "team-qwen", "readOnly": True}, cache
    mounts = [m for c in pod["initContainers"] + pod["containers"] for m in c["volumeMounts"] if m["name"] == "cache"]
    assert len(mounts) == 2 and all(m.get("readOnly") for m in mounts), mounts
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["HF_HUB_OFFLINE"] == "1", env


def test_the_job_is_named_by_what_it_downloads() -> None:
    """The same list on an upgrade is the same (finished) Job; another list is a new Job the servers wait for."""
    name = by_kind(objects(SPEC), "Job")[0]["metadata"]["name"]
    assert name == by_kind(objects(SPEC), "Job")[0]["metadata"]["name"]
    assert name.startswith("team-qwen-preload-") and len(name) == len("team-qwen-preload-") + 6, name
    other = by_kind(objects(SPEC.replace("my-org/sql-lora", "my-org/other-lora")), "Job")[0]["metadata"]["name"]
    assert other != name


def test_plan_says_the_job_downloads_once(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["plan", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    downloads = json.loads(result.output)["downloads"]
    assert {d["from"] for d in downloads} == {f"{HUB}, once, by the preload Job"}, downloads


def test_a_claim_one_node_attaches_rolls_in_place() -> None:
    """A surge pod scheduled on another node could not attach a ReadWriteOnce claim, and the rollout would hang."""
    def rolling(text: str) -> dict[str, Any]:
        server = next(o for o in by_kind(objects(text), "Deployment") if o["metadata"]["name"] == "team-qwen")
        return dict(server["spec"]["strategy"]["rollingUpdate"])

    assert rolling(SPEC.replace("[ReadWriteMany]", "[ReadWriteOnce]")) == {"maxSurge": 0, "maxUnavailable": 1}
    assert rolling(SPEC) == {"maxSurge": 1, "maxUnavailable": 0}


@pytest.mark.parametrize(("change", "path", "fix"), [
    # Preload fills a claim; an emptyDir lives with one pod.
    (("type: persistentVolumeClaim, size: 5Gi, accessModes: [ReadWriteMany], ", ""), "models[0].cache.preload",
     "set cache.type: persistentVolumeClaim"),
    # Several replicas and a claim whose access mode is left to the default.
    ((" accessModes: [ReadWriteMany],", ""), "models[0].cache.accessModes", "[ReadWriteMany]"),
    # An engine whose image cannot preload.
    (("engine: vllm\n    model: Qwen/Qwen2.5-0.5B-Instruct", 'engine: ollama\n    model: "qwen2.5:0.5b"'),
     "models[0].cache.preload", "remove preload"),
    # The Job's name would pass 63 characters.
    (("name: qwen\n", f"name: {'q' * 45}\n"), "models[0].name", "shorten the stack or model name"),
])
def test_preload_is_refused_where_it_cannot_work(tmp_path: Path, change: tuple[str, str], path: str, fix: str) -> None:
    text = SPEC.replace(*change)
    if "ollama" in text:
        text = text.replace("    adapters: [{name: sql, source: my-org/sql-lora, rank: 8}]\n", "")
    assert text != SPEC
    code, output = validate(tmp_path, text)
    assert code == 2 and path in output and fix in output, output


def test_bundle_reads_staged_items_where_the_chart_would_put_them_in_that_registry() -> None:
    """`bundle --copy --from STAGING`: each image and Ollama model at its source's path in the staging registry,
    by the chart's own mapping; Hub repositories are the Hub mirror's, not staged."""
    spec = yaml.safe_load(SPEC)
    spec["models"].append({"name": "small", "engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu"})
    stack = load_text(yaml.safe_dump(spec), "stack.yaml")
    found = staged(stack, "staging.local:5000")
    assert {i.kind for i in found} == {"image", "ollama"}
    assert len(found) == len([i for i in items(stack) if i.kind != "huggingface"])
    for item, ref in found.items():
        assert ref.startswith("staging.local:5000/") and ref.removeprefix("staging.local:5000/") == \
            item.target.removeprefix(f"{REGISTRY}/"), (item, ref)


def test_bundle_copy_needs_crane(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["bundle", str(path), "--copy", "--crane", str(tmp_path / "no-crane")])
    assert result.exit_code == 2 and "scripts/crane/build.sh" in result.output, result.output


def test_the_jobs_pod_is_what_the_servers_run() -> None:
    """Same image and user as the server (the Job needs nothing else in the mirror), and no GPU."""
    objs = objects(SPEC)
    job = by_kind(objs, "Job")[0]["spec"]["template"]["spec"]
    server = next(o for o in by_kind(objs, "Deployment") if o["metadata"]["name"] == "team-qwen")["spec"]["template"]["spec"]
    assert job["containers"][0]["image"] == server["containers"][0]["image"]
    assert job["securityContext"] == server["securityContext"]
    assert not any("gpu" in k for c in containers([by_kind(objs, "Job")[0]]) for k in c["resources"].get("limits", {}))


def test_the_engines_that_preload_are_those_whose_chart_template_says_how() -> None:
    """The generator's `preloads` and the chart's inference-stack.<engine>.preload agree, engine by engine."""
    from stackgen.engines import SERVED
    from tests.chart.chartlib import CHART

    for name, engine in SERVED.items():
        template = (CHART / "templates" / f"_engine-{name}.tpl").read_text()
        assert engine.preloads == (f'define "inference-stack.{name}.preload"' in template), name
