"""What the outputs are written from and how: one render's plan and gateway URL (`Target`), with what several
outputs share made once, and the YAML and JSON text of every file stackgen writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import yaml

from .plan import Plan

# libyaml's emitter is ~10x faster than PyYAML's pure-Python one (a 1,000-model stack renders in a fraction
# of a second instead of seconds) and writes the same text; the golden tests would show any difference.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

T = TypeVar("T")


def dump_yaml(data: Any, header: str = "") -> str:
    body: str = yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=10_000,
                          allow_unicode=True)
    return header + body


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Target:
    """One render: the plan, and the gateway URL agents call. What lands in several outputs (the gateway's
    config in the chart's values and in litellm/config.yaml; the AutoGen configs in the values and in their
    own files) is made once per render, through `once`."""

    plan: Plan
    url: str
    _made: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def once(self, key: str, make: Callable[[], T]) -> T:
        if key not in self._made:
            self._made[key] = make()
        return cast(T, self._made[key])
