"""Models served outside the cluster (Together AI, Mistral AI, OpenAI, an LM Studio on a desk), routed
through the gateway with their provider's LiteLLM route and a key read from a Secret."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..errors import Problem
from ..specbase import HTTP_URL, ModelCommon, OptionalSecret, Profile
from .base import Capabilities, Engine, capabilities

# The spec's provider names -> LiteLLM's route prefixes.
PROVIDER_PREFIX = {"openai": "openai", "mistral": "mistral", "together": "together_ai", "openai-compatible": "openai"}
HOSTED = ("openai", "mistral", "together")


class ExternalModel(ModelCommon):
    """A model served outside the cluster, routed through the gateway."""

    engine: Literal["external"]
    provider: Literal["openai", "mistral", "together", "openai-compatible"] | None = Field(
        default=None, description="Hosted provider; default openai-compatible when baseUrl is set."
    )
    model: str | None = Field(default=None, description="Provider's model id; default the name.")
    baseUrl: str | None = Field(default=None, pattern=HTTP_URL, description="OpenAI-compatible base URL, ending in /v1.")
    apiKey: OptionalSecret = Field(default=None, description="Secret with the provider's API key.")
    vision: bool = False
    family: str | None = None


def api_key_env_name(model_name: str) -> str:
    """The gateway's environment variable holding a model's provider key."""
    return model_name.upper().replace("-", "_") + "_API_KEY"


class External(Engine[ExternalModel]):
    name = "external"
    spec = ExternalModel
    in_cluster = False

    def check(self, m: ExternalModel, profile: Profile | None, at: str) -> list[Problem]:
        problems = []
        if m.provider in (None, "openai-compatible") and not m.baseUrl:
            problems.append(Problem(f"{at}.baseUrl", "an external model needs a provider or a baseUrl",
                                    "set provider: openai | mistral | together, or baseUrl: http://host:port/v1"))
        if m.provider in HOSTED and not m.apiKey:
            problems.append(Problem(f"{at}.apiKey", f"provider {m.provider} needs an API key",
                                    "set apiKey: {secretName: NAME, key: KEY}"))
        if m.provider in HOSTED and not m.model:
            problems.append(Problem(f"{at}.model", f"provider {m.provider} needs the provider's model id",
                                    "set model, e.g. mistral-large-latest"))
        return problems

    def provider(self, m: ExternalModel) -> str:
        return m.provider or "openai-compatible"

    def route(self, m: ExternalModel) -> str:
        """The LiteLLM model the gateway calls: the provider's prefix and its model id."""
        return f"{PROVIDER_PREFIX[self.provider(m)]}/{m.model or m.name}"

    def capabilities(self, m: ExternalModel) -> Capabilities:
        provider = self.provider(m)
        family = m.family or ("mistral" if provider == "mistral" else "unknown")
        # Hosted providers honour response_format json_object; an arbitrary OpenAI-compatible server may not.
        return capabilities(m, family, m.vision, json_output=provider != "openai-compatible", structured=False)


ENGINE = External()
