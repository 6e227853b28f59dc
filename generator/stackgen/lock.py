"""`stackgen lock`: the digest of every image a stack renders, read from the registry the cluster pulls it from,
and `render --lock`, which pins each of those images by that digest.

The images are the exact references the chart renders for the stack (`bundle.rendered_images`: behind a mirror,
the mirror's). The chart appends `@<digest>` to a reference it finds in its `imageDigests` value, so the values,
the plain manifests and the install all run the locked images, and a tag moved later changes nothing. A lock that
lacks an image the stack renders (a model added since, a bumped chart) is refused, naming the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import bundle
from .errors import Problem, StackgenError
from .output import dump_yaml

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HEADER = ("# Written by `stackgen lock`: the digest of each image the stack renders, as its registry served it.\n"
          "# `stackgen render SPEC --lock THIS_FILE` pins every image by it. Run `stackgen lock` again to move.\n")


# Tags that name no release: what they point to changes, so two installs of one spec can run different images.
MOVING_TAGS = frozenset({"latest", "main", "master", "nightly", "edge", "dev", "stable"})


def moving(refs: list[str]) -> list[str]:
    """The references whose tag moves (or that have none), unless pinned by a digest."""
    out = []
    for ref in refs:
        if "@" in ref:
            continue
        name = ref.rsplit("/", 1)[-1]
        tag = name.split(":", 1)[1] if ":" in name else ""
        if not tag or tag in MOVING_TAGS or tag.endswith(("-latest", "-nightly")):
            out.append(ref)
    return out


def moving_notes(refs: list[str]) -> tuple[str, ...]:
    """The warning for each of these image references that has a moving tag (one pinned by a digest has not)."""
    return tuple(f"warning: image {ref}: its tag moves, so each install pulls whatever it points to that day "
                 "(pin it: `stackgen lock SPEC -o FILE`, then `stackgen render SPEC --lock FILE`)"
                 for ref in moving(refs))


def lock(refs: list[str], crane: str, insecure: bool) -> dict[str, str]:
    """Each image reference -> its digest, as its registry serves it; every one the registry cannot answer for is
    named in one error."""
    digests, unread = {}, []
    for ref in refs:
        digest = bundle.crane_digest(crane, ref, insecure)
        if digest is None or not DIGEST.fullmatch(digest):
            unread.append(Problem(ref, f"crane cannot read its digest ({digest or 'no answer'})",
                                  "push the image there, or check the registry's address and credentials"))
        else:
            digests[ref] = digest
    if unread:
        raise StackgenError(unread)
    return digests


def dump(digests: Mapping[str, str]) -> str:
    return dump_yaml({"images": dict(sorted(digests.items()))}, HEADER)


def read(path: Path) -> dict[str, str]:
    """A lock file's images; a malformed file is bad input, each problem at its key's line."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise StackgenError([Problem("", f"cannot read the lock: {err}", "write it with `stackgen lock SPEC -o FILE`")],
                            source) from err
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict) or not images:
        raise StackgenError([Problem("images", "a lock maps each image reference to its digest, and this one has "
                                     "none", "write it with `stackgen lock SPEC -o FILE`")], source)
    problems = [Problem(f"images[{ref}]", f"{digest!r} is not a sha256 digest",
                        "write the lock again with `stackgen lock`", _line(text, str(ref)))
                for ref, digest in images.items() if not isinstance(digest, str) or not DIGEST.fullmatch(digest)]
    if problems:
        raise StackgenError(problems, source)
    return {str(ref): str(digest) for ref, digest in images.items()}


def _line(text: str, ref: str) -> int | None:
    """The line of the lock where ref is a key."""
    found = re.search(rf"^\s+['\"]?{re.escape(ref)}['\"]?\s*:", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else None


def pinned(values: Mapping[str, Any], release: str, namespace: str, digests: Mapping[str, str],
           source: str) -> dict[str, str]:
    """The digest of each image the chart renders from these values, from the lock; refused, naming each image,
    where the lock has none (it was written for another stack, or before the stack changed)."""
    wanted = bundle.rendered_images(values, release, namespace)
    missing = [Problem(f"images[{ref}]", "the stack renders this image and the lock has no digest for it",
                       "run `stackgen lock` for this spec again") for ref in wanted if ref not in digests]
    if missing:
        raise StackgenError(missing, source)
    return {ref: digests[ref] for ref in wanted}
