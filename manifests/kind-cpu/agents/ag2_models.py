"""AG2 1.x clients for stack `kind-cpu`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from $OPENAI_API_KEY
when a client is made, and never written here.

    import asyncio
    from ag2 import Agent
    from ag2_models import config

    agent = Agent("assistant", "You are helpful.", config=config("ollama-small"))
    print(asyncio.run(agent.ask("Hello")).body)
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from ag2.config import OpenAIConfig

GATEWAY_URL = 'http://kind-cpu-gateway.stackgen.svc.cluster.local:4000/v1'
API_KEY_ENV = 'OPENAI_API_KEY'
# Set by code that holds the key itself; unset, each client reads the variable above.
API_KEY: str | None = None
# Every client sends one conversation id in this header (a new one per client unless given): a model with
# several replicas keeps the conversation on one of them, whose prefix cache then holds all of it.
SESSION_HEADER = 'x-session-id'
# What each model can do: tools (function calling), vision (image input), json_output, context_length
# (tokens; None: the provider's).
MODELS: dict[str, dict[str, Any]] = {
    'ollama-small': {'tools': True, 'vision': False, 'json_output': True, 'context_length': 8192},
    'vllm-small': {'tools': False, 'vision': False, 'json_output': True, 'context_length': 4096},
}


def _api_key() -> str:
    return API_KEY or os.environ[API_KEY_ENV]


def _known(model: str) -> str:
    if model not in MODELS:
        raise KeyError(f"{model!r} is not a model of stack kind-cpu (models: {', '.join(MODELS)})")
    return model


def _conversation(conversation: str | None) -> dict[str, str]:
    """The headers of one conversation: pass the same id to every client of one conversation."""
    return {SESSION_HEADER: conversation or uuid.uuid4().hex}


def config(model: str, conversation: str | None = None, **overrides: Any) -> OpenAIConfig:
    """The OpenAIConfig of one model of the stack for one conversation (extra OpenAIConfig fields as keyword
    arguments)."""
    return OpenAIConfig(model=_known(model), base_url=GATEWAY_URL, api_key=_api_key(),
                        default_headers=_conversation(conversation), **overrides)
