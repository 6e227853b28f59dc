"""Filling a registry mirror: crane against the ORAS CLI, on the same copy, side by side.

Two distribution registries on loopback (the Ollama tier's build, serving blobs themselves: crane refuses a
redirect to another loopback address), one the source and one the mirror. The source holds an image of four
layers of incompressible bytes (64 MiB each, seeded, so the same every run),
pushed with crane. Each tool copies it into a repository of its own in the mirror: `crane copy`
(go-containerregistry's crane, as `stackgen bundle --copy` runs it) and `oras cp` (ORAS v1.3.6's CLI), each
at its default concurrency. A cold copy goes to a new repository; the re-run copies the same image again,
which must move no blob. Prints a Markdown table.

    python bench/mirror.py [--repeat 3] [--layer-mib 64]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engines.engines import ollama_bin_dir
from tests.engines.registry import start_registry
from tests.support.prebuild import built

LAYERS = 4


def layer(path: Path, seed: int, mib: int) -> Path:
    """A layer tarball holding one file of `mib` MiB of seeded random bytes."""
    rng = random.Random(seed)
    data = b"".join(rng.randbytes(1 << 20) for _ in range(mib))
    info = tarfile.TarInfo(f"blob-{seed}")
    info.size, info.mtime = len(data), 0
    with tarfile.open(path, "w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return path


def timed(argv: list[str]) -> float:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=64)
    args = parser.parse_args()
    crane = str(built("crane/build.sh") / "crane")
    oras = str(built("oras/build.sh") / "oras")
    registry = ollama_bin_dir() / "registry"
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        work = Path(tmp)
        with start_registry(registry, work / "source", redirects=False) as source, \
                start_registry(registry, work / "mirror", redirects=False) as mirror:
            image = f"{source.host}/bench/layers:1"
            tars = [str(layer(work / f"layer{i}.tar", i, args.layer_mib)) for i in range(LAYERS)]
            subprocess.run([crane, "append", "--insecure", "--oci-empty-base", "-t", image,
                            *[f"--new_layer={t}" for t in tars]], check=True, capture_output=True, text=True)
            tools = {
                "crane copy": lambda dst: [crane, "copy", "--insecure", image, dst],
                "oras cp": lambda dst: [oras, "cp", "--from-plain-http", "--to-plain-http", image, dst],
            }
            cold: dict[str, list[float]] = {name: [] for name in tools}
            again: dict[str, list[float]] = {name: [] for name in tools}
            for run in range(args.repeat):
                for name, argv in tools.items():  # interleaved, so neither tool gets the quieter moments
                    dst = f"{mirror.host}/bench/{name.split()[0]}-{run}:1"
                    cold[name].append(timed(argv(dst)))
                    again[name].append(timed(argv(dst)))
    mib = LAYERS * args.layer_mib
    base = statistics.median(cold["crane copy"])
    print(f"One image of {LAYERS} layers, {mib} MiB, between two registries on loopback; median of {args.repeat}.\n")
    print("| tool | cold copy s | MiB/s | re-run s | cold vs crane |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in tools:
        c, a = statistics.median(cold[name]), statistics.median(again[name])
        print(f"| {name} | {c:.2f} | {mib / c:.0f} | {a:.2f} | {c / base:.2f}x |")


if __name__ == "__main__":
    main()
