#!/usr/bin/env python3
"""Write a container image as a `docker save` archive, which `ctr images import` reads.

Usage: oci.py OUT.tar REF CONFIG.json LAYER_DIR...

Each LAYER_DIR becomes one uncompressed layer, in order (the first is the bottom). CONFIG.json holds the
image's runtime config (Entrypoint, Cmd, Env, User, WorkingDir). The archive is byte-identical for the
same inputs: entries are sorted, owners numeric, times zero. A layer shared by several images (the Debian
base) gets the same digest in each, so containerd stores and unpacks it once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def layer_tar(src: Path, dest: Path) -> str:
    """Tar one directory with GNU tar (fast on the multi-GB vLLM layer); return its sha256. No xattrs:
    an overlay upper directory carries the overlay's own (trusted.overlay.*), which are no part of it."""
    for path in src.rglob("*"):
        # An overlayfs whiteout (a 0/0 character device) means the build deleted a base file; an image
        # layer spells that differently (.wh. files), and no build here should delete anything.
        st = path.lstat()
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            sys.exit(f"oci.py: {path} is a whiteout: the build removed a file of the layer below")
    subprocess.run(["tar", "--create", f"--file={dest}", f"--directory={src}", "--sort=name",
                    "--mtime=@0", "--numeric-owner", "--format=posix",
                    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "."],
                   check=True)
    digest = hashlib.sha256()
    with dest.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write(out: Path, ref: str, runtime: dict[str, object], layers: list[Path]) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        names, diff_ids = [], []
        for i, layer in enumerate(layers):
            path = Path(tmp) / f"layer{i}.tar"
            diff_ids.append("sha256:" + layer_tar(layer, path))
            names.append(f"{diff_ids[-1][7:]}/layer.tar")
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "scripts/node/build.sh"} for _ in layers],
        }, sort_keys=True).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": names}]).encode()
        partial = out.with_suffix(".partial")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            add_bytes(archive, config_name, config)
            add_bytes(archive, "manifest.json", manifest)
            for i, name in enumerate(names):
                archive.add(Path(tmp) / f"layer{i}.tar", arcname=name, recursive=False, filter=plain)
                os.unlink(Path(tmp) / f"layer{i}.tar")  # keep at most one copy of a big layer
        shutil.move(partial, out)


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    out, ref, config = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    write(out.resolve(), ref, json.loads(config.read_text()), [Path(p) for p in sys.argv[4:]])


if __name__ == "__main__":
    main()
