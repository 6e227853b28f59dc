"""An OpenPGP key for Helm's provenance, made the way a release manager makes one: GnuPG in batch mode, RSA (the
OpenPGP library Helm reads keyrings with takes RSA), no passphrase, exported as the binary keyrings Helm reads; and
the chart published with it by scripts/chart/publish.sh, as `make chart-publish` does."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stackgen.version import VERSION

from .paths import SCRIPTS

KEY_NAME = "stackgen test charts"


@dataclass(frozen=True)
class Keyrings:
    name: str  # what `helm package --sign --key` takes
    secret: Path
    public: Path


def make_keyrings(work: Path, name: str = KEY_NAME) -> Keyrings:
    home = work / "gnupg"
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    params = (f"Key-Type: RSA\nKey-Length: 2048\nName-Real: {name}\nName-Email: charts@stackgen.test\n"
              "Expire-Date: 0\n%no-protection\n%commit\n")
    subprocess.run(["gpg", "--batch", "--gen-key"], input=params, text=True, env=env, check=True,
                   capture_output=True, timeout=120)
    secret, public = work / "secring.gpg", work / "pubring.gpg"
    secret.write_bytes(subprocess.run(["gpg", "--batch", "--export-secret-keys", name], env=env, check=True,
                                      capture_output=True, timeout=60).stdout)
    public.write_bytes(subprocess.run(["gpg", "--batch", "--export", name], env=env, check=True,
                                      capture_output=True, timeout=60).stdout)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, timeout=30, check=False)
    return Keyrings(name, secret, public)


def publish_chart(registry: str, keys: Keyrings, helm: str, *push_flags: str) -> tuple[str, ...]:
    """Sign the chart with `keys` and push it under oci://<registry>/charts; the reference and flags a user's
    `helm install` gives to install it with its signature checked (and `push_flags`: --plain-http)."""
    done = subprocess.run(["bash", str(SCRIPTS / "chart" / "publish.sh"), f"oci://{registry}/charts", keys.name,
                           str(keys.secret), str(keys.public), *push_flags],
                          env={**os.environ, "HELM": helm}, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return (f"oci://{registry}/charts/inference-stack", "--version", VERSION, "--verify", "--keyring",
            str(keys.public), *push_flags)
