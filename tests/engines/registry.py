"""A local OCI registry that Ollama can push a model to and pull it back from, for the engine tests.

The chart's Ollama pod pulls its model in an init container (`ollama pull "$OLLAMA_MODEL"`). To run
that script for real without the internet, the model lives in a Docker distribution registry on
127.0.0.1, published there by a real `ollama create` + `ollama push`.

Pulling from a stock registry fails with "no Location header": Ollama asks for each blob expecting a
307 redirect to another host (ollama.com redirects to its CDN) and downloads from wherever that points.
So the registry runs its `redirect` storage middleware, which answers blob GETs with a redirect to
``<baseurl><storage path>``, and a small file server on 127.0.0.2 stands in for the CDN by serving the
registry's storage root, where that path names the blob's file. It must be another host, not just
another port: Ollama follows a redirect to the same hostname itself and then finds no Location.

The file server answers HTTP Range requests: Ollama asks for every blob by range, and splits one
larger than 100 MB into parallel ranged parts (resuming by range too), so a server that ignored Range
(`python -m http.server`) would hand every part the start of the file. Run as a script, this module
is that file server.
"""

from __future__ import annotations

import argparse
import copy
import functools
import http.server
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import httpx
import yaml

from stackgen.localstack import ManagedProcess, free_port, spawn, wait_until

__all__ = ["Registry", "build_tiny_model", "http_ok", "publish_model", "start_registry"]

LOOPBACK = "127.0.0.1"
REGISTRY_HOST = LOOPBACK
# The CDN stand-in: a different hostname from the registry's, or Ollama follows the redirect itself.
FILES_HOST = "127.0.0.2"
START_TIMEOUT = 30.0
OLLAMA_TIMEOUT = 120.0

@dataclass
class Registry:
    """A running registry (``host`` is what goes in a model reference) and its CDN stand-in."""

    host: str
    storage_root: Path
    registry: ManagedProcess
    files: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def model_ref(self, name: str, tag: str = "latest") -> str:
        return f"{self.host}/library/{name}:{tag}"

    def stop(self) -> None:
        self.registry.stop()
        self.files.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _registry_config(storage_root: Path, addr: str, files_base_url: str | None, deletes: bool) -> dict[str, object]:
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage_root)},
            # Blob descriptors cached in memory: nothing to configure, nothing left behind.
            "cache": {"blobdescriptor": "inmemory"},
            # DELETE of a manifest by digest (off by default in distribution).
            "delete": {"enabled": deletes},
        },
        "http": {"addr": addr},
    }
    if files_base_url:
        # Blob GET/HEAD -> 307 to baseurl + the driver path (/docker/registry/v2/blobs/...), which the
        # file server resolves under storage_root.
        config["middleware"] = {"storage": [{"name": "redirect", "options": {"baseurl": files_base_url}}]}
    return config


def start_registry(registry_bin: Path, workdir: Path, timeout: float = START_TIMEOUT,
                   host: str = REGISTRY_HOST, files_host: str = FILES_HOST, deletes: bool = False,
                   redirects: bool = True) -> Registry:
    """Start the distribution registry on ``host``:<free port> (127.0.0.1; the node tier's pods reach it on
    its link address), storing under ``workdir``, with its blob redirects served by a file server on
    ``files_host`` (127.0.0.2) unless ``redirects`` is off (a registry serving blobs itself, which Ollama cannot
    pull from), and manifest deletes allowed if ``deletes``. Returns once GET /v2/ answers 200 and the
    file server answers; raises with a process's log if it exits or is not up within ``timeout``."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage_root = workdir / "storage"
    storage_root.mkdir(exist_ok=True)

    files_port = free_port(files_host)
    files = spawn("registry-files", [sys.executable, __file__, "serve-files", str(storage_root), files_host,
                                     str(files_port)], workdir / "files.log")
    try:
        wait_until(lambda: http_ok(f"http://{files_host}:{files_port}/"), files, timeout,
                   "registry file server")

        addr = f"{host}:{free_port(host)}"
        config_path = workdir / "registry.yaml"
        config_path.write_text(yaml.safe_dump(
            _registry_config(storage_root, addr, f"http://{files_host}:{files_port}/" if redirects else None, deletes),
            sort_keys=False))
        # distribution v3 sends OpenTelemetry traces to localhost:4318 unless told not to.
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none"}
        registry = spawn("registry", [str(registry_bin), "serve", str(config_path)], workdir / "registry.log",
                         env)
    except BaseException:
        files.stop()
        raise
    try:
        wait_until(lambda: http_ok(f"http://{addr}/v2/"), registry, timeout,
                   "registry")
    except BaseException:
        registry.stop()
        files.stop()
        raise
    return Registry(addr, storage_root, registry, files)


def _ollama_env(home: Path, port: int) -> dict[str, str]:
    # HOME too: the server keeps its signing key (used for pushes) in $HOME/.ollama, not in the user's.
    return {**os.environ, "HOME": str(home), "OLLAMA_HOST": f"{LOOPBACK}:{port}",
            "OLLAMA_MODELS": str(home / "models")}


def _run_cli(ollama_bin: Path, args: list[str], env: dict[str, str], timeout: float) -> None:
    done = subprocess.run([str(ollama_bin), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ollama {' '.join(args)} exited with {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


def publish_model(ollama_bin: Path, gguf: Path, registry: Registry, name: str, workdir: Path,
                  timeout: float = OLLAMA_TIMEOUT) -> str:
    """Make an Ollama model of ``gguf`` (built by ``build_tiny_model``) with tinyollama's Modelfile,
    whose template scripts the replies, and push it to ``registry`` as library/<name>:latest; return
    that reference, ready for `ollama pull --insecure`.

    A temporary `ollama serve` does the work, with its models and key under ``workdir``."""
    # Imported here: run as a script (the file server) this module is not in a package.
    from .tinyollama import modelfile as tiny_modelfile

    home = workdir / f"publish-{name}"
    home.mkdir(parents=True, exist_ok=True)
    modelfile = home / "Modelfile"
    modelfile.write_text(tiny_modelfile(gguf))

    port = free_port()
    env = _ollama_env(home, port)
    server = spawn("ollama-publish", [str(ollama_bin), "serve"], home / "serve.log", env)
    try:
        wait_until(lambda: http_ok(f"http://{LOOPBACK}:{port}/api/version"), server, timeout,
                   "ollama serve (publish)")
        ref = registry.model_ref(name)
        # Created under its final name, so the push needs no `ollama cp`.
        _run_cli(ollama_bin, ["create", ref, "-f", str(modelfile)], env, timeout)
        # --insecure: the registry speaks plain HTTP, and Ollama assumes https without it.
        _run_cli(ollama_bin, ["push", "--insecure", ref], env, timeout)
    finally:
        server.stop()
    return ref


def mirrored(spec: dict[str, Any], model_ref: str) -> dict[str, Any]:
    """The spec with every Ollama model pulled from the local registry mirror instead of Ollama's library,
    as an air-gapped cluster names its mirror."""
    out = copy.deepcopy(spec)
    for model in out["models"]:
        if model["engine"] == "ollama":
            model["model"] = model_ref
            model["insecureRegistry"] = True
    return out


def build_tiny_model(path: Path) -> Path:
    """tinyqwen's copying model as a GGUF (tinyollama.py), written to ``path``: with the Modelfile
    ``publish_model`` gives it, real Ollama answers chats, tool calls and tool results as scripted."""
    from .tinyollama import build_tiny_ollama_gguf  # see publish_model

    return build_tiny_ollama_gguf(path)


# ---- the CDN stand-in, run as `python registry.py serve-files ROOT HOST PORT` -----------------------


class _RangeFileHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, with `Range: bytes=a-b` answered as 206 (one range; else the whole file)."""

    # Bytes still to send of the current ranged reply; None for a whole-file reply.
    _range_left: int | None = None

    def send_head(self) -> BinaryIO | None:
        span = self._requested_span()
        if span is None:
            self._range_left = None
            return super().send_head()
        path, first, last, size = span
        if first > last:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        handle = path.open("rb")
        handle.seek(first)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        self._range_left = last - first + 1
        return handle

    def _requested_span(self) -> tuple[Path, int, int, int] | None:
        """(file, first, last, size) of a single satisfiable-looking byte range, else None."""
        header = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not header.startswith("bytes=") or "," in header or not path.is_file():
            return None
        size = path.stat().st_size
        first_text, _, last_text = header.removeprefix("bytes=").partition("-")
        try:
            if first_text:
                first, last = int(first_text), int(last_text) if last_text else size - 1
            else:  # a suffix range: the last N bytes
                first, last = max(size - int(last_text), 0), size - 1
        except ValueError:
            return None
        return path, first, min(last, size - 1), size

    def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:  # type: ignore[override]
        left, self._range_left = self._range_left, None
        if left is None:
            shutil.copyfileobj(source, outputfile)
            return
        while left > 0:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                break
            outputfile.write(chunk)
            left -= len(chunk)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _serve_files(root: Path, host: str, port: int) -> None:
    handler = functools.partial(_RangeFileHandler, directory=str(root))
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    files = sub.add_parser("serve-files", help="serve ROOT on HOST:PORT, with Range support")
    files.add_argument("root", type=Path)
    files.add_argument("host")
    files.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.command == "serve-files":
        _serve_files(args.root, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
