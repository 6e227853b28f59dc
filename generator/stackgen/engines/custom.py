"""Bring your own server: any OpenAI-compatible server image (TGI, SGLang, a team's own), routed and emitted
like the engines stackgen knows. The spec supplies what stackgen cannot know about it: its image, how
to start it, its port, its health path, the model id it answers to and what the model can do. The
chart's template is `_engine-custom.tpl`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from .. import capacity
from ..capacity import Sizing
from ..errors import Problem
from ..specbase import URL_PATH, Profile, ServedModel
from .base import Capabilities, EngineValues, ServedEngine, Server, capabilities


class CustomModel(ServedModel):
    engine: Literal["custom"]
    command: list[str] = Field(default_factory=list, description="The container's command; empty keeps the image's entrypoint.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port the server listens on in the pod.")
    healthPath: str | None = Field(default=None, pattern=URL_PATH,
                                   description="HTTP path that answers 200 once the server can serve, e.g. /health.")
    jsonOutput: bool = Field(default=False, description="The server honours response_format json_object.")
    structuredOutput: bool = Field(default=False, description="The server honours response_format json_schema.")


class CustomValues(EngineValues):
    """A server you bring, from `models.<name>.image`, started with `args`."""

    port: int = Field(ge=1, le=65535, description="Port it listens on.")
    healthPath: str = Field(pattern="^/", description="Path every probe asks; 200 once it can serve.")
    command: list[str] | None = Field(default=None, json_schema_extra={"chartDefault": "the image's"},
                                      description="The container's command.")


class Custom(ServedEngine[CustomModel]):
    name = "custom"
    spec = CustomModel
    values = CustomValues
    default_image = None
    images: ClassVar[Mapping[str, str | None]] = {}  # only the image the spec names
    restricted_note = ("its image runs as the chart's non-root user (values: podSecurity) on a read-only root "
                       "filesystem: it may write only under HOME, /tmp and its cache volume; an image "
                       "that writes elsewhere, or must be root, fails to start")
    no_adapters = ("stackgen cannot know how a server it does not know loads them: start it with them in `args` "
                   "and add each name the server answers to as a model of its own")

    def check(self, m: CustomModel, profile: Profile | None, at: str) -> list[Problem]:
        problems = []
        if not m.image:
            problems.append(Problem(f"{at}.image", "a custom server runs the image the spec names, and none is named",
                                    "set image: repository:tag of an OpenAI-compatible server"))
        if m.port is None:
            problems.append(Problem(f"{at}.port", "stackgen cannot know the port a custom server listens on",
                                    "set port, e.g. 8080"))
        if m.healthPath is None:
            problems.append(Problem(f"{at}.healthPath", "the pod's probes need a path that answers 200 once the "
                                    "server can serve", "set healthPath, e.g. /health or /v1/models"))
        return problems

    def sizing(self, m: CustomModel, profile: Profile, at: str) -> Sizing:
        # One GPU per replica on a GPU profile: stackgen does not know how the server spreads over more.
        return capacity.unknown("a custom server's memory is not modelled", 1 if profile.gpu else 0, m.contextLength)

    def server(self, m: CustomModel, profile: Profile, sized: Sizing) -> Server:
        assert m.port is not None and m.healthPath is not None  # `check` refused a model without them
        return Server(CustomValues(port=m.port, healthPath=m.healthPath, command=list(m.command) or None))

    def upstream(self, m: CustomModel) -> str:
        """The id the spec says the server answers to."""
        return m.model

    def capabilities(self, m: CustomModel) -> Capabilities:
        return capabilities(m, m.family or "unknown", bool(m.vision), json_output=m.jsonOutput,
                            structured=m.structuredOutput)


ENGINE = Custom()
