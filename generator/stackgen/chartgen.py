"""The chart's engine contract, written from the engine registry: `python -m stackgen.chartgen [CHART]`
(`make chart`).

Each in-cluster engine declares its section of the chart's values as a typed model (`EngineValues`) and its
default image. From them this writes, in charts/inference-stack:
- values.schema.json: `models.<name>.<engine>` for every engine, the `engine` enum, and `images.<engine>`;
- values.yaml: the `images.<engine>` defaults;
- README.md: the rows of those keys in the values table.

Everything else in those files is written by hand and kept as it is. The engines written before are the ones
the schema's enum names, so a removed engine's keys go too. tests/chart/test_chart_contract.py fails when a
file differs from what this writes, so a hand edit of an engine's keys does not survive.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from .engines import SERVED, EngineValues, ServedEngine

CHART = Path(__file__).resolve().parents[2] / "charts" / "inference-stack"
PULL_POLICY = "IfNotPresent"
# How the chart's schema file is laid out: an object or list is written on one line when it holds no
# `properties`, nests at most two levels and fits in this many characters.
LINE = 200


class _Schema(GenerateJsonSchema):
    """Pydantic's JSON schema as the chart writes it: an optional field is its type (absent means unset),
    and no titles."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> dict[str, Any]:
        return self.generate_inner(schema["schema"])

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


KEY_ORDER = ("description", "type", "enum", "items", "minimum", "exclusiveMinimum", "maximum", "minLength", "pattern")


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    node = {k: v for k, v in node.items() if k not in ("title", "default", "chartDefault")}
    if "anyOf" in node and all(set(alt) == {"type"} for alt in node["anyOf"]):
        node["type"] = [alt["type"] for alt in node.pop("anyOf")]
    return {k: node[k] for k in sorted(node, key=lambda k: KEY_ORDER.index(k) if k in KEY_ORDER else len(KEY_ORDER))}


def section(values: type[EngineValues]) -> dict[str, Any]:
    """The schema of `models.<name>.<engine>`."""
    raw = values.model_json_schema(schema_generator=_Schema)
    out: dict[str, Any] = {"description": _prose(raw["description"]), "type": "object", "additionalProperties": False}
    if raw.get("required"):
        out["required"] = raw["required"]
    out["properties"] = {key: _tidy(prop) for key, prop in raw["properties"].items()}
    return out


def _prose(text: str) -> str:
    """A docstring as one line."""
    return " ".join(text.split())


def _image(ref: str) -> tuple[str, str]:
    repository, _, tag = ref.rpartition(":")
    return repository, tag


def _with_images(engines: dict[str, ServedEngine[Any]]) -> dict[str, ServedEngine[Any]]:
    return {name: e for name, e in engines.items() if e.default_image}


def _splice(mapping: dict[str, Any], old: Iterable[str], new: dict[str, Any]) -> dict[str, Any]:
    """`mapping` with the keys of `old` replaced by `new`, placed where the first of them was (else at the end)."""
    gone = set(old)
    keys = list(mapping)
    at = next((i for i, k in enumerate(keys) if k in gone), len(keys))
    kept = [k for k in keys[:at] if k not in gone], [k for k in keys[at:] if k not in gone]
    return {**{k: mapping[k] for k in kept[0]}, **new, **{k: mapping[k] for k in kept[1]}}


def old_engines(schema: dict[str, Any]) -> list[str]:
    return list(schema["definitions"]["model"]["properties"]["engine"]["enum"])


def schema(current: dict[str, Any], engines: dict[str, ServedEngine[Any]] = SERVED) -> dict[str, Any]:
    old = old_engines(current)
    model = current["definitions"]["model"]
    properties = _splice(model["properties"], old, {name: section(e.values) for name, e in engines.items()})
    properties["engine"] = {
        "description": f"Inference server: {', '.join(engines)} (templates/_engine-<engine>.tpl says how each starts).",
        "type": "string", "enum": list(engines)}
    images = current["properties"]["images"]
    image_props = _splice(images["properties"], old, {
        name: {"description": e.image_doc, "$ref": "#/definitions/image"} for name, e in _with_images(engines).items()})
    return {**current,
            "properties": {**current["properties"], "images": {**images, "properties": image_props}},
            "definitions": {**current["definitions"], "model": {**model, "properties": properties}}}


def _depth(node: Any) -> int:
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return 1 + max((_depth(c) for c in children), default=0) if isinstance(node, (dict, list)) else 0


def format_json(node: Any, indent: int = 0, room: int = LINE, key: str = "") -> str:
    """JSON in the chart's layout: a small leaf on one line; a schema with properties, a map of properties or
    definitions, and anything longer or deeper, one key a line."""
    flat = json.dumps(node, ensure_ascii=False, separators=(", ", ": "))
    nested = isinstance(node, (dict, list)) and node and (
        key in ("properties", "definitions") or (isinstance(node, dict) and "properties" in node)
        or _depth(node) > 2 or len(flat) > room)
    if not nested:
        return flat
    pad = "  " * (indent + 1)
    if isinstance(node, dict):
        items = [f"{pad}{json.dumps(k)}: {format_json(v, indent + 1, LINE - len(pad) - len(json.dumps(k)) - 3, k)}"
                 for k, v in node.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    items = [pad + format_json(v, indent + 1, LINE - len(pad) - 1) for v in node]
    return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"


def _yaml_scalar(text: str) -> str:
    return json.dumps(text) if re.fullmatch(r"[0-9.]+", text) else text


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, 112, initial_indent=f"{indent}# -- ", subsequent_indent=f"{indent}# ")


def values_yaml(text: str, old: Iterable[str], engines: dict[str, ServedEngine[Any]] = SERVED) -> str:
    """values.yaml with the `images.<engine>` blocks (each with the comment above it) written anew."""
    lines = text.splitlines(keepends=True)
    start = lines.index("images:\n") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].strip() and not lines[i].startswith(" "))
    # Each block: the comment lines at its indent, its key line, and the lines under it.
    blocks: list[tuple[str, list[str]]] = []
    key: str | None = None
    current: list[str] = []
    for line in lines[start:end]:
        named = re.match(r"^  ([A-Za-z0-9]+):", line)
        if (named or line.startswith("  #")) and key is not None:
            blocks.append((key, current))
            key, current = None, []
        current.append(line)
        if named:
            key = named.group(1)
    assert key is not None, "images: ends in a comment"
    blocks.append((key, current))
    fresh: dict[str, list[str]] = {}
    for name, e in _with_images(engines).items():
        assert e.default_image
        repository, tag = _image(e.default_image)
        body = [*_comment(e.image_doc, "  "), f"  {name}:", "    # -- Image repository.", f"    repository: {repository}",
                "    # -- Image tag.", f"    tag: {_yaml_scalar(tag)}", "    # -- Pull policy.", f"    pullPolicy: {PULL_POLICY}"]
        fresh[name] = [line + "\n" for line in body]
    ordered = _splice(dict(blocks), old, fresh)
    return "".join(lines[:start]) + "".join("".join(b) for b in ordered.values()) + "".join(lines[end:])


def _row(key: str, default: str, description: str) -> str:
    return f"| `{key}` |{' ' + default if default else ''} | {description} |\n"


def readme(text: str, old: Iterable[str], engines: dict[str, ServedEngine[Any]] = SERVED) -> str:
    """The chart README with the rows of `images.<engine>`, `models.<name>.engine` and `models.<name>.<engine>`
    written anew, each group where its first row was."""
    old = list(old)
    images: list[str] = []
    for name, e in _with_images(engines).items():
        assert e.default_image
        repository, tag = _image(e.default_image)
        images += [_row(f"images.{name}", "", e.image_doc),
                   _row(f"images.{name}.repository", f"`{repository}`", "Image repository."),
                   _row(f"images.{name}.tag", f"`{tag}`", "Image tag."),
                   _row(f"images.{name}.pullPolicy", f"`{PULL_POLICY}`", "Pull policy.")]
    sections: list[str] = []
    for name, e in engines.items():
        raw = e.values.model_json_schema(schema_generator=_Schema)
        sections.append(_row(f"models.<name>.{name}", "" if raw.get("required") else "`{}`", _prose(raw["description"])))
        for key, prop in raw["properties"].items():
            required = " Required." if key in raw.get("required", ()) else ""
            sections.append(_row(f"models.<name>.{name}.{key}", prop.get("chartDefault", ""), prop["description"] + required))
    engine_row = _row("models.<name>.engine", "", "**Required.** " + ", ".join(f"`{n}`" for n in engines)
                      + " (`templates/_engine-<engine>.tpl` says how each starts).")
    groups: list[tuple[Callable[[str], bool], list[str]]] = [
        (lambda k: any(k == f"images.{n}" or k.startswith(f"images.{n}.") for n in old), images),
        (lambda k: k == "models.<name>.engine", [engine_row]),
        (lambda k: any(k == f"models.<name>.{n}" or k.startswith(f"models.<name>.{n}.") for n in old), sections)]
    out: list[str] = []
    placed = [False] * len(groups)
    for line in text.splitlines(keepends=True):
        key = re.match(r"^\| `([^`]+)` \|", line)
        group = next((i for i, (match, _) in enumerate(groups) if key and match(key.group(1))), None)
        if group is None:
            out.append(line)
        elif not placed[group]:
            out += groups[group][1]
            placed[group] = True
    missing = [i for i, done in enumerate(placed) if not done]
    if missing:
        raise ValueError(f"the chart README's values table has no row of group {missing}: add one where it belongs")
    return "".join(out)


def generated(chart: Path = CHART) -> dict[Path, str]:
    """What the chart's three files hold once the engine sections are written from the registry."""
    schema_path, values_path, readme_path = chart / "values.schema.json", chart / "values.yaml", chart / "README.md"
    current = json.loads(schema_path.read_text())
    old = old_engines(current)
    return {schema_path: format_json(schema(current)) + "\n",
            values_path: values_yaml(values_path.read_text(), old),
            readme_path: readme(readme_path.read_text(), old)}


def main(argv: list[str]) -> int:
    chart = Path(argv[0]) if argv else CHART
    for path, text in generated(chart).items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
