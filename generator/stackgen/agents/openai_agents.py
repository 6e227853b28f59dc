"""OpenAI Agents SDK (`openai-agents`): a module that builds an `OpenAIChatCompletionsModel` per model name
(the gateway speaks Chat Completions, not the Responses API the SDK defaults to)."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

from ..plan import Plan
from .base import PROMPT, TOOL_PROMPT, ModuleFramework, capabilities, counted_tool, expect_reply, expect_tool_result, module_text

MODULE = "openai_agents_models"


def usage(plan: Plan) -> str:
    first = plan.models[0].name
    return f"""    from agents import Agent, Runner
    from {MODULE} import model

    agent = Agent(name="assistant", instructions="You are helpful.", model=model("{first}"))
    print(Runner.run_sync(agent, "Hello").final_output)
"""


def source(plan: Plan, url: str) -> str:
    table = {m.name: capabilities(m) for m in plan.models}
    body = '''def model(name: str, conversation: str | None = None) -> OpenAIChatCompletionsModel:
    """One model of the stack for one conversation, for Agent(model=...)."""
    client = AsyncOpenAI(base_url=GATEWAY_URL, api_key=_api_key(),
                         default_headers=_conversation(conversation))
    return OpenAIChatCompletionsModel(model=_known(name), openai_client=client)
'''
    imports = ("from agents import OpenAIChatCompletionsModel, set_tracing_disabled\nfrom openai import AsyncOpenAI\n\n"
               "# The SDK would upload traces to OpenAI's platform, with the gateway key; the gateway is not OpenAI.\n"
               "set_tracing_disabled(True)")
    return module_text(plan, url, "OpenAI Agents SDK", usage(plan), imports,
                       "What each model can do: tools (function tools), vision (image input), json_output "
                       "(output_type), context_length (tokens; None: the provider's).",
                       "MODELS", "dict[str, dict[str, Any]]", table, body)


def _run(agent: Any, prompt: str) -> object:
    from agents import Runner

    return asyncio.run(Runner.run(agent, prompt)).final_output


def reply(module: ModuleType, model: str) -> str:
    from agents import Agent

    return expect_reply(_run(Agent(name="verify", instructions="Answer briefly.", model=module.model(model)), PROMPT))


def tool_round_trip(module: ModuleType, model: str) -> str:
    from agents import Agent, function_tool

    function, calls = counted_tool()
    agent = Agent(name="verify", instructions="Use the tools you have.", model=module.model(model),
                  tools=[function_tool(function)])
    return expect_tool_result(_run(agent, TOOL_PROMPT), calls)


FRAMEWORK = ModuleFramework("openai-agents", "OpenAI Agents SDK", "openai-agents==0.24.0", MODULE,
                            "model(name) -> OpenAIChatCompletionsModel", usage, source, reply, tool_round_trip)
