"""Microsoft Agent Framework (`agent-framework-core` with `agent-framework-openai`): a module that builds an
`OpenAIChatCompletionClient` per model name (the gateway speaks Chat Completions)."""

from __future__ import annotations

import asyncio
from types import ModuleType

from ..plan import Plan
from .base import PROMPT, TOOL_PROMPT, ModuleFramework, capabilities, counted_tool, expect_reply, expect_tool_result, module_text

MODULE = "agent_framework_models"


def usage(plan: Plan) -> str:
    first = plan.models[0].name
    return f"""    import asyncio
    from agent_framework import Agent
    from {MODULE} import client

    agent = Agent(client("{first}"), "You are helpful.")
    print(asyncio.run(agent.run("Hello")).text)
"""


def source(plan: Plan, url: str) -> str:
    table = {m.name: capabilities(m) for m in plan.models}
    body = '''def client(model: str, conversation: str | None = None) -> OpenAIChatCompletionClient:
    """A Chat Completions client of one model of the stack for one conversation; its abilities ride in
    additional_properties."""
    client = OpenAIChatCompletionClient(model=_known(model), base_url=GATEWAY_URL, api_key=_api_key(),
                                        default_headers=_conversation(conversation))
    client.additional_properties.update(MODELS[model])
    return client
'''
    return module_text(plan, url, "Microsoft Agent Framework", usage(plan),
                       "from agent_framework.openai import OpenAIChatCompletionClient",
                       "What each model can do (the client's additional_properties): tools, vision, json_output, "
                       "context_length (tokens; None: the provider's).",
                       "MODELS", "dict[str, dict[str, Any]]", table, body)


def reply(module: ModuleType, model: str) -> str:
    from agent_framework import Agent

    async def ask() -> object:
        return (await Agent(module.client(model), "Answer briefly.").run(PROMPT)).text

    return expect_reply(asyncio.run(ask()))


def tool_round_trip(module: ModuleType, model: str) -> str:
    from agent_framework import Agent

    tool, calls = counted_tool()

    async def ask() -> object:
        agent = Agent(module.client(model), "Use the tools you have.", tools=[tool])
        return (await agent.run(TOOL_PROMPT)).text

    return expect_tool_result(asyncio.run(ask()), calls)


FRAMEWORK = ModuleFramework("agent-framework", "Microsoft Agent Framework",
                            "agent-framework-core==1.23.0 agent-framework-openai==1.17.0", MODULE,
                            "client(model) -> OpenAIChatCompletionClient", usage, source, reply, tool_round_trip)
