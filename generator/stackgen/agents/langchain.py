"""LangChain (`langchain-openai`): a module that builds a `ChatOpenAI` per model name, its abilities in
LangChain's own model profile (tool_calling, image_inputs, structured_output, max_input_tokens)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..plan import ModelPlan, Plan
from .base import PROMPT, TOOL_PROMPT, ModuleFramework, capabilities, counted_tool, expect_reply, expect_tool_result, module_text

MODULE = "langchain_models"


def usage(plan: Plan) -> str:
    first = plan.models[0].name
    return f"""    from {MODULE} import chat_model

    llm = chat_model("{first}")
    print(llm.invoke("Hello").content)
"""


def profile(m: ModelPlan) -> dict[str, Any]:
    can = capabilities(m)
    out: dict[str, Any] = {"tool_calling": can["tools"], "image_inputs": can["vision"],
                           "structured_output": can["json_output"]}
    if can["context_length"]:
        out["max_input_tokens"] = can["context_length"]
    return out


def source(plan: Plan, url: str) -> str:
    body = '''def chat_model(model: str, conversation: str | None = None, **kwargs: Any) -> ChatOpenAI:
    """A ChatOpenAI of one model of the stack for one conversation (extra ChatOpenAI fields as keyword
    arguments)."""
    return ChatOpenAI(model=_known(model), base_url=GATEWAY_URL, api_key=_api_key(),
                      profile=ModelProfile(**PROFILES[model]), default_headers=_conversation(conversation), **kwargs)
'''
    return module_text(plan, url, "LangChain", usage(plan),
                       "from langchain_core.language_models import ModelProfile\nfrom langchain_openai import ChatOpenAI",
                       "Each model's profile (llm.profile): what it can do, in LangChain's terms.",
                       "PROFILES", "dict[str, dict[str, Any]]", {m.name: profile(m) for m in plan.models}, body)


def reply(module: ModuleType, model: str) -> str:
    return expect_reply(module.chat_model(model).invoke(PROMPT).content)


def tool_round_trip(module: ModuleType, model: str) -> str:
    from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool as as_tool

    function, calls = counted_tool()
    tool = as_tool(function)
    llm = module.chat_model(model).bind_tools([tool])
    messages: list[BaseMessage] = [HumanMessage(TOOL_PROMPT)]
    asked = llm.invoke(messages)
    messages.append(asked)
    for call in asked.tool_calls:
        messages.append(ToolMessage(str(tool.invoke(call["args"])), tool_call_id=call["id"]))
    return expect_tool_result(llm.invoke(messages).content, calls)


FRAMEWORK = ModuleFramework("langchain", "LangChain", "langchain-openai==1.7.4", MODULE,
                            "chat_model(model) -> ChatOpenAI", usage, source, reply, tool_round_trip)
