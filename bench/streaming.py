"""One streamed chat turn, timed: what the serving and routing benchmarks measure each turn with."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx


async def streamed_turn(client: httpx.AsyncClient, url: str, body: Mapping[str, Any],
                        headers: Mapping[str, str] | None = None) -> tuple[float, str, int]:
    """POST a chat request with stream on; returns (seconds to the first content token, or to the end if none
    came; the reply's text; its completion tokens, from the final usage chunk)."""
    request = {**body, "stream": True, "stream_options": {"include_usage": True}}
    start, first, reply, tokens = time.perf_counter(), None, "", 0
    async with client.stream("POST", url, json=request, headers=dict(headers or {})) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                if text and first is None:
                    first = time.perf_counter() - start
                reply += text
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (first if first is not None else time.perf_counter() - start), reply, tokens
