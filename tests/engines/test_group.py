"""A model split across a group of pods (nodesPerReplica, #38), on vLLM's real CPU build: the leader's and the
worker's containers of the rendered LeaderWorkerSet, each started as the kubelet would start it with what LWS gives
its pods (the leader's address, the pod's index), serve a real model, SmolLM2-135M-Instruct (tests/engines/
smollm2.py), as two pipeline stages that meet over TCP at the leader's address.

The two processes share this machine's loopback, not two nodes' network: what crosses between them is the same
(torch.distributed's rendezvous on the leader's port, the stages' tensors), the distance is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files

from .engines import Vllm
from .pods import Server, container, free_port
from .smollm2 import smollm2

pytestmark = pytest.mark.engines

CALL_WAIT_S = 20  # a call this small is answered in under a second while both stages live

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SPEC = f"""\
name: grp
profiles:
  cpu: {{cpu: "1", memory: 4Gi}}
models:
  - name: smol
    engine: vllm
    model: {HUB_ID}
    profile: cpu
    maxModelLen: 2048
    nodesPerReplica: 2
"""


@pytest.fixture(scope="module")
def group(vllm: Vllm, engines_workdir: Path) -> Iterator[tuple[Server, Server]]:
    """The group's leader, once its probes pass, and its worker."""
    workdir = engines_workdir / "group"
    files = render_files(plan(load_text(SPEC, "group.yaml")).stack)
    template = yaml.safe_load(files["manifests/leaderworkerset-grp-smol.yaml"])["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    model_dir = smollm2(vllm.venv)
    pods = {role: container(template[f"{role}Template"]["spec"], "vllm") for role in ("leader", "worker")}
    # The pods meet on vLLM's default port (29501) at the leader's address; here, one of this machine's free ports,
    # which no other process of it can hold.
    meet = ["--master-port", str(free_port())]
    started: list[Server] = []
    try:
        for index, role in ((1, "worker"), (0, "leader")):  # the worker first: the leader waits for it to join
            # What LWS's webhook puts in every container of a group's pods.
            lws = {"LWS_LEADER_ADDRESS": "127.0.0.1", "LWS_WORKER_INDEX": str(index), "LWS_GROUP_SIZE": "2"}
            started.append(vllm.run(pods[role], f"smol-{role}", HUB_ID, model_dir, workdir, lws, meet))
        worker, leader = started
        yield leader, worker
    finally:
        for server in reversed(started):
            server.stop()


def test_the_rendered_leader_and_worker_serve_the_model_as_two_stages(group: tuple[Server, Server]) -> None:
    leader, worker = group
    body = {"model": "smol", "messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 16,
            "temperature": 0}
    reply = httpx.post(f"{leader.api_base}/chat/completions", json=body, timeout=120).json()
    assert reply["usage"]["completion_tokens"] > 0 and reply["choices"][0]["message"]["content"].strip(), reply
    # Each process holds one stage of the layers: the worker the second, headless (it answers no HTTP).
    stages = {s.name: re.findall(r"rank (\d) in world size 2 is assigned as .*?PP rank (\d)", s.process.log_tail(400))
              for s in group}
    assert stages == {leader.name: [("0", "0")], worker.name: [("1", "1")]}, stages
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{worker.url}/health", timeout=5)


def test_a_dead_worker_is_invisible_to_the_leaders_probes(group: tuple[Server, Server]) -> None:
    """Why the group restarts whole (RecreateGroupOnPodRestart): when a worker dies, the leader still answers its
    health probe, while a call that needs the worker's stage waits on it and is never answered. Only LWS, which sees
    the worker's pod fail, can restart the leader with it."""
    leader, worker = group
    worker.process.kill()  # the whole container, as a killed pod or a lost node would take it
    assert httpx.get(f"{leader.url}/health", timeout=10).status_code == 200
    body = {"model": "smol", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{leader.api_base}/chat/completions", json=body, timeout=httpx.Timeout(5, read=CALL_WAIT_S))
    assert httpx.get(f"{leader.url}/health", timeout=10).status_code == 200
