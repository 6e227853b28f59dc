"""AG2 1.x (the `ag2` package, import name `ag2`): a module of `OpenAIConfig`s, one per model name."""

from __future__ import annotations

import asyncio
from types import ModuleType

from ..plan import Plan
from .base import PROMPT, TOOL_PROMPT, ModuleFramework, capabilities, counted_tool, expect_reply, expect_tool_result, module_text

MODULE = "ag2_models"


def usage(plan: Plan) -> str:
    first = plan.models[0].name
    return f"""    import asyncio
    from ag2 import Agent
    from {MODULE} import config

    agent = Agent("assistant", "You are helpful.", config=config("{first}"))
    print(asyncio.run(agent.ask("Hello")).body)
"""


def source(plan: Plan, url: str) -> str:
    table = {m.name: capabilities(m) for m in plan.models}
    body = '''def config(model: str, conversation: str | None = None, **overrides: Any) -> OpenAIConfig:
    """The OpenAIConfig of one model of the stack for one conversation (extra OpenAIConfig fields as keyword
    arguments)."""
    return OpenAIConfig(model=_known(model), base_url=GATEWAY_URL, api_key=_api_key(),
                        default_headers=_conversation(conversation), **overrides)
'''
    return module_text(plan, url, "AG2 1.x", usage(plan), "from ag2.config import OpenAIConfig",
                       "What each model can do: tools (function calling), vision (image input), json_output, "
                       "context_length (tokens; None: the provider's).",
                       "MODELS", "dict[str, dict[str, Any]]", table, body)


def reply(module: ModuleType, model: str) -> str:
    from ag2 import Agent

    async def ask() -> object:
        agent = Agent("verify", "Answer briefly.", config=module.config(model))
        return (await agent.ask(PROMPT)).body

    return expect_reply(asyncio.run(ask()))


def tool_round_trip(module: ModuleType, model: str) -> str:
    from ag2 import Agent

    tool, calls = counted_tool()

    async def ask() -> object:
        agent = Agent("verify", "Use the tools you have.", config=module.config(model), tools=[tool])
        return (await agent.ask(TOOL_PROMPT)).body

    return expect_tool_result(asyncio.run(ask()), calls)


# `OpenAIConfig` needs the `openai` extra: plain `ag2` imports, then fails at the first config.
FRAMEWORK = ModuleFramework("ag2", "AG2 1.x", "ag2[openai]==1.2.1", MODULE, "config(model) -> OpenAIConfig", usage,
                            source, reply, tool_round_trip)
