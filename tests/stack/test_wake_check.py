"""The gateway's check before a call to a model that may sleep (charts/inference-stack/files/stackgen_wake.py), on
a real LiteLLM proxy running the rendered config, the module beside it as `render` writes it.

The gateway waits for such a model as long as a wake and an answer take (600 s more than for a model that is
up), so an interceptor it cannot reach must not cost that long. On the node tier an interceptor Service with no
endpoint lost the gateway's SYNs instead of refusing them; here a loopback port loses them the same way (a
listener whose one-place accept queue is full), and the node tier's autoscaling module proves the same against the
real interceptor stopped.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackgen import wake
from stackgen.load import load_text
from stackgen.localstack import ManagedProcess, point_at_local, start_gateway
from tests.support.rendered import longest_answer_s

from .calls import chat
from .conftest import Launch, LocalStack

SPEC = """\
name: team
namespace: llm
gateway: {replicas: 1}
profiles:
  cpu: {cpu: "2", memory: 8Gi}
models:
  - {name: qwen, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu,
     autoscaling: {minReplicas: 0, maxReplicas: 1}}
"""
# Well inside the wake's budget that a lost connect would otherwise cost (the rendered timeout, for each try).
FAIL_FAST_S = 60


@pytest.fixture(scope="module")
def sleepy(launch: Launch) -> LocalStack:
    return launch(load_text(SPEC, "stack.yaml"))


@contextlib.contextmanager
def lost_syns() -> Iterator[int]:
    """A loopback port that loses every SYN: a listener with a backlog of 0, its one queued connection never
    accepted. A connect to it gets no answer, as the gateway's to an interceptor Service with no endpoint did."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            with pytest.raises(TimeoutError), socket.create_connection(("127.0.0.1", port), timeout=2):
                pass  # the port loses SYNs now: not refused, no answer
            yield port


def test_the_check_lets_a_call_through_to_an_interceptor_that_is_there(sleepy: LocalStack) -> None:
    config = sleepy.rendered_config()
    assert wake.GATEWAY_CALLBACK in config["litellm_settings"]["callbacks"]
    assert (sleepy.gateway.config_path.parent / f"{wake.GATEWAY_HOOK}.py").is_file()
    reply = chat(sleepy.gateway.api_base, sleepy.gateway.headers(), "qwen")
    assert reply.status_code == 200, reply.text


def test_an_interceptor_that_cannot_be_reached_fails_the_call_at_once_with_its_address(
        sleepy: LocalStack, stack_workdir: Path, _processes: list[ManagedProcess]) -> None:
    rendered = sleepy.rendered_config()
    budget = longest_answer_s(rendered, "qwen")
    with lost_syns() as port:
        gateway = start_gateway(point_at_local(rendered, {"qwen": f"http://127.0.0.1:{port}/v1"}), stack_workdir)
        _processes.append(gateway.process)
        start = time.monotonic()
        reply = chat(gateway.api_base, gateway.headers(), "qwen", timeout=FAIL_FAST_S * 2)
        took = time.monotonic() - start
    gateway.process.stop()
    print(f"the interceptor lost: HTTP {reply.status_code} after {took:.1f}s (a budget of {budget}s): {reply.text}")
    assert reply.status_code == 503, reply.text
    assert "route llm/team-qwen" in reply.text and "the interceptor that wakes it cannot be reached" in reply.text
    # LiteLLM masks cluster-internal addresses in what it answers; the gateway's log names the one that failed.
    assert f"interceptor 127.0.0.1:{port} cannot be reached" in gateway.process.log_tail(200)
    assert took < FAIL_FAST_S < budget, f"{took:.1f}s, against a budget of {budget}s"
