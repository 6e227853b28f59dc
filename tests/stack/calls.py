"""Small HTTP helpers: one chat through an OpenAI-compatible URL, and a model server's own count of work."""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

from .procs import ModelServer

MAX_TOKENS = 8


def chat(base_url: str, headers: Mapping[str, str], model: str, timeout: float = 60.0,
         **extra: object) -> httpx.Response:
    """POST one short chat completion to ``base_url`` (ending in /v1)."""
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": MAX_TOKENS, **extra}
    return httpx.post(f"{base_url}/chat/completions", json=body, headers=dict(headers), timeout=timeout)


_DECODES = re.compile(r"^llamacpp:n_decode_total\s+(\d+(?:\.\d+)?)", re.MULTILINE)


def decode_count(server: ModelServer) -> int:
    """llama.cpp's count of decode calls: it rises on every request that server answers."""
    response = httpx.get(f"{server.url}/metrics", headers=server.headers(), timeout=5.0)
    response.raise_for_status()
    match = _DECODES.search(response.text)
    if match is None:
        raise AssertionError(f"no llamacpp:n_decode_total in {server.url}/metrics")
    return int(float(match.group(1)))


def decode_counts(servers: Mapping[str, ModelServer]) -> dict[str, int]:
    return {name: decode_count(server) for name, server in servers.items()}
