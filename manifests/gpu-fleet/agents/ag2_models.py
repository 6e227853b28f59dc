"""AG2 1.x clients for stack `fleet`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from $OPENAI_API_KEY
when a client is made, and never written here.

    import asyncio
    from ag2 import Agent
    from ag2_models import config

    agent = Agent("assistant", "You are helpful.", config=config("qwen-7b"))
    print(asyncio.run(agent.ask("Hello")).body)
"""

from __future__ import annotations

import os
from typing import Any

from ag2.config import OpenAIConfig

GATEWAY_URL = 'https://llm.example.com/v1'
API_KEY_ENV = 'OPENAI_API_KEY'
# What each model can do: tools (function calling), vision (image input), json_output, context_length
# (tokens; None: the provider's).
MODELS: dict[str, dict[str, Any]] = {
    'qwen-7b': {'tools': True, 'vision': False, 'json_output': True, 'context_length': 8192},
    'llama-70b': {'tools': False, 'vision': False, 'json_output': True, 'context_length': 16384},
    'mistral-7b': {'tools': False, 'vision': False, 'json_output': True, 'context_length': 16384},
    'gemma-ollama': {'tools': False, 'vision': True, 'json_output': True, 'context_length': 8192},
}


def _known(model: str) -> str:
    if model not in MODELS:
        raise KeyError(f"{model!r} is not a model of stack fleet (models: {', '.join(MODELS)})")
    return model


def config(model: str, **overrides: Any) -> OpenAIConfig:
    """The OpenAIConfig of one model of the stack (extra OpenAIConfig fields as keyword arguments)."""
    return OpenAIConfig(model=_known(model), base_url=GATEWAY_URL, api_key=os.environ[API_KEY_ENV], **overrides)
