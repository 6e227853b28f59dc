"""LangChain clients for stack `hybrid`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from $STACK_GATEWAY_KEY
when a client is made, and never written here.

    from langchain_models import chat_model

    llm = chat_model("local-llama")
    print(llm.invoke("Hello").content)
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models import ModelProfile
from langchain_openai import ChatOpenAI

GATEWAY_URL = 'http://hybrid-gateway.agents.svc.cluster.local:4000/v1'
API_KEY_ENV = 'STACK_GATEWAY_KEY'
# Each model's profile (llm.profile): what it can do, in LangChain's terms.
PROFILES: dict[str, dict[str, Any]] = {
    'local-llama': {'tool_calling': True, 'image_inputs': False, 'structured_output': True, 'max_input_tokens': 16384},
    'local-ollama': {'tool_calling': True, 'image_inputs': False, 'structured_output': True, 'max_input_tokens': 8192},
    'together-llama': {'tool_calling': True, 'image_inputs': False, 'structured_output': True},
    'mistral-large': {'tool_calling': True, 'image_inputs': False, 'structured_output': True},
    'lm-studio': {'tool_calling': False, 'image_inputs': False, 'structured_output': False},
}


def _known(model: str) -> str:
    if model not in PROFILES:
        raise KeyError(f"{model!r} is not a model of stack hybrid (models: {', '.join(PROFILES)})")
    return model


def chat_model(model: str, **kwargs: Any) -> ChatOpenAI:
    """A ChatOpenAI of one model of the stack (extra ChatOpenAI fields as keyword arguments)."""
    return ChatOpenAI(model=_known(model), base_url=GATEWAY_URL, api_key=os.environ[API_KEY_ENV],
                      profile=ModelProfile(**PROFILES[model]), **kwargs)
