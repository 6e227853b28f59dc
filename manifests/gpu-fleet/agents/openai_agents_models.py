"""OpenAI Agents SDK clients for stack `fleet`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from $OPENAI_API_KEY
when a client is made, and never written here.

    from agents import Agent, Runner
    from openai_agents_models import model

    agent = Agent(name="assistant", instructions="You are helpful.", model=model("qwen-7b"))
    print(Runner.run_sync(agent, "Hello").final_output)
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from agents import OpenAIChatCompletionsModel, set_tracing_disabled
from openai import AsyncOpenAI

# The SDK would upload traces to OpenAI's platform, with the gateway key; the gateway is not OpenAI.
set_tracing_disabled(True)

GATEWAY_URL = 'https://llm.example.com/v1'
API_KEY_ENV = 'OPENAI_API_KEY'
# Set by code that holds the key itself; unset, each client reads the variable above.
API_KEY: str | None = None
# Every client sends one conversation id in this header (a new one per client unless given): a model with
# several replicas keeps the conversation on one of them, whose prefix cache then holds all of it.
SESSION_HEADER = 'x-session-id'
# What each model can do: tools (function tools), vision (image input), json_output (output_type),
# context_length (tokens; None: the provider's).
MODELS: dict[str, dict[str, Any]] = {
    'qwen-7b': {'tools': True, 'vision': False, 'json_output': True, 'context_length': 8192},
    'llama-70b': {'tools': False, 'vision': False, 'json_output': True, 'context_length': 16384},
    'mistral-7b': {'tools': False, 'vision': False, 'json_output': True, 'context_length': 16384},
    'gemma-ollama': {'tools': False, 'vision': True, 'json_output': True, 'context_length': 8192},
}


def _api_key() -> str:
    return API_KEY or os.environ[API_KEY_ENV]


def _known(model: str) -> str:
    if model not in MODELS:
        raise KeyError(f"{model!r} is not a model of stack fleet (models: {', '.join(MODELS)})")
    return model


def _conversation(conversation: str | None) -> dict[str, str]:
    """The headers of one conversation: pass the same id to every client of one conversation."""
    return {SESSION_HEADER: conversation or uuid.uuid4().hex}


def model(name: str, conversation: str | None = None) -> OpenAIChatCompletionsModel:
    """One model of the stack for one conversation, for Agent(model=...)."""
    client = AsyncOpenAI(base_url=GATEWAY_URL, api_key=_api_key(),
                         default_headers=_conversation(conversation))
    return OpenAIChatCompletionsModel(model=_known(name), openai_client=client)
