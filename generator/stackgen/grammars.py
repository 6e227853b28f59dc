"""The grammars of the identifiers a spec hands to other programs, each taken from the program that reads it,
so a name those programs would refuse at install or pull time is refused by `validate` instead.

Each check returns None for a good value, or the rule broken and an example, for a message.
"""

from __future__ import annotations

import re

# Ollama (types/model/name.go): [host/][namespace/]model[:tag]. Every part starts with a letter, digit or
# '_' and goes on with those, '-' and '.'; a namespace has no '.', only a host has ':' (its port); the host
# is at most 350 characters, every other part at most 80.
_OLLAMA_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
OLLAMA_EXAMPLE = "qwen2.5:0.5b, or registry.internal:5000/library/qwen2.5:0.5b"


def ollama_name(name: str) -> str | None:
    rest, tag = name, None
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = rest.rsplit(":", 1)
    parts = rest.split("/")
    if len(parts) > 3:
        return "at most host/namespace/model"
    host = parts[0] if len(parts) == 3 else None
    if host is not None:
        host = host.split("://", 1)[-1]
        if not (1 <= len(host) <= 350 and re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$", host)):
            return f"the host {host!r} must be letters, digits, '_', '-', '.' and a ':port'"
    named = {"model": parts[-1], "namespace": parts[-2] if len(parts) >= 2 else None, "tag": tag}
    for kind, part in named.items():
        if part is None:
            continue
        if not 1 <= len(part) <= 80 or not _OLLAMA_PART.match(part) or (kind == "namespace" and "." in part):
            allowed = "'_' and '-'" if kind == "namespace" else "'_', '-' and '.'"
            return (f"the {kind} {part!r} must start with a letter, digit or '_' and go on with those, {allowed} "
                    "(1 to 80 characters)")
    return None


# Hugging Face (huggingface_hub's validate_repo_id): [namespace/]name, letters, digits, '-', '_' and '.',
# neither starting nor ending with '-' or '.', without '--' or '..', the name at most 96 characters.
_HF_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
HF_EXAMPLE = "Qwen/Qwen2.5-7B-Instruct"


def hf_repo(repo: str) -> str | None:
    parts = repo.split("/")
    if len(parts) > 2:
        return "a Hugging Face id is namespace/name"
    for part in parts:
        if not _HF_PART.match(part) or "--" in part or ".." in part or len(part) > 96:
            return (f"{part!r} must be letters, digits, '-', '_' and '.', not starting or ending with '-' or '.', "
                    "without '--' or '..' (at most 96 characters)")
    return None


# An image reference (the distribution project's reference grammar, which every registry client follows):
# [domain[:port]/]path[:tag][@digest], the path lower case, at most 255 characters before the tag.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?$")
IMAGE_EXAMPLE = "ghcr.io/acme/server:1.2, or registry.internal:5000/team/server@sha256:<64 hex digits>"


def image_reference(ref: str) -> str | None:
    found = _REFERENCE.match(ref)
    if not found:
        return ("it must read [registry[:port]/]path[:tag][@digest], the path in lower-case letters and digits "
                "with '.', '_' or '-' between them")
    if len(found.group("name")) > 255:
        return "the repository name is longer than 255 characters"
    return None


# Kubernetes label keys and values (apimachinery's IsQualifiedName and IsValidLabelValue): a key is
# [prefix/]name, the prefix a DNS subdomain of at most 253 characters, the name at most 63 characters of
# letters, digits, '-', '_' and '.', beginning and ending with a letter or digit; a value is such a name,
# or empty. Annotation keys follow the key grammar.
_LABEL_NAME = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# A DNS subdomain (RFC 1123), as Kubernetes checks object names, hosts and label prefixes.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_EXAMPLE = "team: agents, or app.kubernetes.io/part-of: ml"
_NAME_RULE = "at most 63 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit"


def label_key(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return "a key has at most one '/', between a DNS prefix and a name"
    if prefix and (len(prefix) > 253 or not re.match(DNS_SUBDOMAIN, prefix)):
        return f"its prefix {prefix!r} must be a lower-case DNS name of at most 253 characters"
    if len(name) > 63 or not _LABEL_NAME.match(name):
        return f"its name {name!r} must be {_NAME_RULE}"
    return None


def label_value(value: str) -> str | None:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        return f"a value must be empty or {_NAME_RULE}"
    return None
