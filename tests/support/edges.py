"""Specs near the edges of every field, for the property tests of the front door (tests/test_front_door.py) and of
the real API server (tests/cluster/test_accepted_installs.py): a valid stack with a model of every engine, whose
leaves are replaced by edge values, dropped or misspelt."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "name": "edge",
    "namespace": "llm",
    "gateway": {"replicas": 2, "numWorkers": 1, "timeoutSeconds": 60, "image": "ghcr.io/berriai/litellm:main-v1.108.7"},
    "autogen": {"apiKeyEnv": "OPENAI_API_KEY"},
    "profiles": {
        "cpu": {"cpu": "2", "memory": "8Gi"},
        "l4": {"gpu": {"resource": "nvidia.com/gpu", "count": 1, "memoryGiB": 24}, "cpu": "4", "memory": "32Gi"},
    },
    "models": [
        {"name": "qwen", "engine": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct", "profile": "l4", "maxModelLen": 8192,
         "toolCalling": True, "tags": ["tools"], "fallbacks": ["small"]},
        {"name": "small", "engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu", "keepAlive": "30m",
         "env": {"OLLAMA_NUM_PARALLEL": "2"}},
        {"name": "gguf", "engine": "llamacpp", "model": "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
         "file": "qwen2.5-0.5b-instruct-q4_k_m.gguf", "profile": "cpu", "parallel": 2},
        {"name": "byo", "engine": "custom", "model": "served", "image": "ghcr.io/acme/server:1.0", "port": 9000,
         "healthPath": "/health", "profile": "cpu", "args": ["--serve"]},
        {"name": "cloud", "engine": "external", "provider": "mistral", "model": "mistral-large-latest",
         "apiKey": {"secretName": "mistral", "key": "api-key"}},
        {"name": "desk", "engine": "external", "baseUrl": "http://127.0.0.1:1234/v1"},
    ],
}


def leaves(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [at] + [p for k, v in node.items() for p in leaves(v, (*at, k))]
    if isinstance(node, list):
        return [at] + [p for i, v in enumerate(node) for p in leaves(v, (*at, i))]
    return [at]


PATHS = [p for p in leaves(BASE) if p]
# Values at the edges of what a field takes, and plausible mistakes.
EDGES: list[Any] = [None, "", " ", 0, -1, 1, 2**31, 1e308, True, [], {}, "0", "-1", "x" * 300, "a b;c", "../x",
                    "qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "nvidia", "amd.com/gpu", "together_ai", "llama.cpp",
                    "8Gi", "500m", "http://h/v1", "/health", "OPENAI_API_KEY", "sk-live-123", "café", "\u0000",
                    {"secretName": "s", "key": "k"}, ["--flag"], "ghcr.io/Acme/Server:1", "forever"]


def mutate(edits: list[tuple[tuple[Any, ...], Any, str]], base: dict[str, Any] = BASE) -> dict[str, Any]:
    spec = copy.deepcopy(base)
    for path, value, how in edits:
        parent: Any = spec
        try:
            for part in path[:-1]:
                parent = parent[part]
            if how == "drop":
                del parent[path[-1]]
            elif how == "misspell" and isinstance(parent, dict):
                parent[f"{path[-1]}s"] = parent.pop(path[-1])
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the place
    return spec
