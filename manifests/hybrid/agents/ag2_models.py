"""AG2 1.x clients for stack `hybrid`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from $STACK_GATEWAY_KEY
when a client is made, and never written here.

    import asyncio
    from ag2 import Agent
    from ag2_models import config

    agent = Agent("assistant", "You are helpful.", config=config("local-llama"))
    print(asyncio.run(agent.ask("Hello")).body)
"""

from __future__ import annotations

import os
from typing import Any

from ag2.config import OpenAIConfig

GATEWAY_URL = 'http://hybrid-gateway.agents.svc.cluster.local:4000/v1'
API_KEY_ENV = 'STACK_GATEWAY_KEY'
# What each model can do: tools (function calling), vision (image input), json_output, context_length
# (tokens; None: the provider's).
MODELS: dict[str, dict[str, Any]] = {
    'local-llama': {'tools': True, 'vision': False, 'json_output': True, 'context_length': 16384},
    'local-ollama': {'tools': True, 'vision': False, 'json_output': True, 'context_length': 8192},
    'together-llama': {'tools': True, 'vision': False, 'json_output': True, 'context_length': None},
    'mistral-large': {'tools': True, 'vision': False, 'json_output': True, 'context_length': None},
    'lm-studio': {'tools': False, 'vision': False, 'json_output': False, 'context_length': None},
}


def _known(model: str) -> str:
    if model not in MODELS:
        raise KeyError(f"{model!r} is not a model of stack hybrid (models: {', '.join(MODELS)})")
    return model


def config(model: str, **overrides: Any) -> OpenAIConfig:
    """The OpenAIConfig of one model of the stack (extra OpenAIConfig fields as keyword arguments)."""
    return OpenAIConfig(model=_known(model), base_url=GATEWAY_URL, api_key=os.environ[API_KEY_ENV], **overrides)
