"""LangChain clients for stack `fleet`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from $OPENAI_API_KEY
when a client is made, and never written here.

    from langchain_models import chat_model

    llm = chat_model("qwen-7b")
    print(llm.invoke("Hello").content)
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from langchain_core.language_models import ModelProfile
from langchain_openai import ChatOpenAI

GATEWAY_URL = 'https://llm.example.com/v1'
API_KEY_ENV = 'OPENAI_API_KEY'
# Set by code that holds the key itself; unset, each client reads the variable above.
API_KEY: str | None = None
# Every client sends one conversation id in this header (a new one per client unless given): a model with
# several replicas keeps the conversation on one of them, whose prefix cache then holds all of it.
SESSION_HEADER = 'x-session-id'
# Each model's profile (llm.profile): what it can do, in LangChain's terms.
PROFILES: dict[str, dict[str, Any]] = {
    'qwen-7b': {'tool_calling': True, 'image_inputs': False, 'structured_output': True, 'max_input_tokens': 8192},
    'llama-70b': {'tool_calling': False, 'image_inputs': False, 'structured_output': True, 'max_input_tokens': 16384},
    'mistral-7b': {'tool_calling': False, 'image_inputs': False, 'structured_output': True, 'max_input_tokens': 16384},
    'gemma-ollama': {'tool_calling': False, 'image_inputs': True, 'structured_output': True, 'max_input_tokens': 8192},
}


def _api_key() -> str:
    return API_KEY or os.environ[API_KEY_ENV]


def _known(model: str) -> str:
    if model not in PROFILES:
        raise KeyError(f"{model!r} is not a model of stack fleet (models: {', '.join(PROFILES)})")
    return model


def _conversation(conversation: str | None) -> dict[str, str]:
    """The headers of one conversation: pass the same id to every client of one conversation."""
    return {SESSION_HEADER: conversation or uuid.uuid4().hex}


def chat_model(model: str, conversation: str | None = None, **kwargs: Any) -> ChatOpenAI:
    """A ChatOpenAI of one model of the stack for one conversation (extra ChatOpenAI fields as keyword
    arguments)."""
    return ChatOpenAI(model=_known(model), base_url=GATEWAY_URL, api_key=_api_key(),
                      profile=ModelProfile(**PROFILES[model]), default_headers=_conversation(conversation), **kwargs)
