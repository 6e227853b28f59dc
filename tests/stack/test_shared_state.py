"""Two gateway replicas sharing their state through Redis, as the chart deploys them: Debian's real
`redis-server` with a password on loopback, and two real LiteLLM proxies on the config stackgen renders
(Redis host, port and password read from the environment, as the chart fills it).

- A model's rpm limit holds for both replicas together, not for each; the control, the same two proxies
  without Redis, lets through the limit once per replica.
- When Redis dies, requests keep being answered: LiteLLM logs the Redis errors and counts in memory,
  per replica, until Redis is back.

Cooldowns are not shown shared because there is none to share: LiteLLM 1.108.7 never benches a model group
with a single deployment while a router-wide allowed_fails is set (router_utils/cooldown_handlers.py,
`_should_cooldown_deployment`), and stackgen renders one deployment per model (its replicas sit behind one
Service). The README says so.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stackgen.gateway import REDIS_ENV
from stackgen.load import load_text
from stackgen.localstack import Gateway, point_at_local, start_gateway
from stackgen.render import render_files
from tests.pins import pin

from .calls import chat
from .conftest import StartModelServer
from .procs import ModelServer, Redis, start_redis

RPM = 4
# A request over the limit waits for the next minute; one not answered in this long was held.
HELD_S = 5.0
SPEC = f"""
name: shared
gateway:
  replicas: 2
profiles:
  cpu: {{cpu: "1", memory: 2Gi}}
models:
  - {{name: limited, engine: ollama, model: "qwen2.5:0.5b", profile: cpu, limits: {{rpm: {RPM}}}}}
  - {{name: plain, engine: ollama, model: "qwen2.5:0.5b", profile: cpu}}
"""


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = start_redis(tmp_path)
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
    # The chart's image runs the same release the test does.
    assert f"v={pin('redis')} " in version, version
    yield server
    server.process.stop()


def _config(backends: dict[str, str]) -> dict[str, Any]:
    stack = load_text(SPEC, "shared.yaml")
    rendered = yaml.safe_load(render_files(stack, with_manifests=False)["litellm/config.yaml"])
    return point_at_local(rendered, backends)


@dataclass
class Pair:
    a: Gateway
    b: Gateway

    def both(self) -> tuple[Gateway, Gateway]:
        return self.a, self.b


def _pair(config: dict[str, Any], workdir: Path, redis: Redis | None) -> Pair:
    key = f"sk-{secrets.token_hex(8)}"
    env = {"LITELLM_MASTER_KEY": key}
    if redis:
        env |= redis.gateway_env()
    a = start_gateway(config, workdir, env)
    try:
        b = start_gateway(config, workdir, env)
    except BaseException:
        a.process.stop()
        raise
    return Pair(a, b)


@pytest.fixture(scope="module")
def backend(start_model_server: StartModelServer) -> ModelServer:
    return start_model_server("qwen2.5:0.5b")


def _backends(server: ModelServer) -> dict[str, str]:
    return {"limited": server.api_base, "plain": server.api_base}


@pytest.fixture
def shared(backend: ModelServer, redis: Redis, tmp_path: Path) -> Iterator[Pair]:
    config = _config(_backends(backend))
    assert {config["router_settings"][k] for k in REDIS_ENV} == {f"os.environ/{v}" for v in REDIS_ENV.values()}
    pair = _pair(config, tmp_path, redis)
    yield pair
    for gw in pair.both():
        gw.process.stop()


@pytest.fixture
def separate(backend: ModelServer, tmp_path: Path) -> Iterator[Pair]:
    """The control: the same rendered config, no Redis (the variables unset, as with redis disabled)."""
    pair = _pair(_config(_backends(backend)), tmp_path, None)
    yield pair
    for gw in pair.both():
        gw.process.stop()


def _answered(pair: Pair, model: str, count: int, timeout: float = 60) -> list[int]:
    """Send ``count`` chats alternating between the replicas; a chat not answered within ``timeout``
    counts as 0 (LiteLLM holds a request over the limit until the next minute rather than refusing it)."""
    codes = []
    for i in range(count):
        gw = pair.both()[i % 2]
        try:
            codes.append(chat(gw.api_base, gw.headers(), model, timeout=timeout).status_code)
        except httpx.TimeoutException:
            codes.append(0)
    return codes


def _quick_answers(pair: Pair) -> list[int]:
    # LiteLLM counts per wall-clock minute: start early in one, so the whole run falls inside it. The run
    # takes up to RPM + 1 holds of HELD_S (every request past the limit is held that long), plus slack.
    if time.time() % 60 > 60 - (RPM + 1) * HELD_S - 10:
        time.sleep(61 - time.time() % 60)
    return _answered(pair, "limited", 2 * RPM + 1, timeout=HELD_S)


def test_an_rpm_limit_holds_across_both_replicas(shared: Pair, redis: Redis) -> None:
    codes = _quick_answers(shared)
    print(f"rpm {RPM}, two replicas sharing Redis, status per request (0: held past {HELD_S}s): {codes}")
    assert 0 < codes.count(200) <= RPM, codes
    # The count both replicas read is Redis's (LiteLLM's per-minute key of the deployment).
    assert any(":rpm:" in key for key in redis.keys()), redis.keys()  # noqa: SIM118 - Redis's KEYS, not a dict's


def test_without_redis_each_replica_counts_its_own_minute(separate: Pair) -> None:
    codes = _quick_answers(separate)
    print(f"rpm {RPM}, two replicas without Redis, status per request (0: held past {HELD_S}s): {codes}")
    assert codes.count(200) > RPM, codes


def test_requests_keep_being_answered_when_redis_dies(shared: Pair, redis: Redis) -> None:
    assert _answered(shared, "plain", 4) == [200] * 4
    redis.process.kill()
    assert _answered(shared, "plain", 6) == [200] * 6
    logs = shared.a.process.log_path.read_text(errors="replace") + shared.b.process.log_path.read_text(errors="replace")
    assert re.search(r"redis", logs, re.IGNORECASE), "LiteLLM did not log the lost Redis"
