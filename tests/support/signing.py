"""An OpenPGP key for Helm's provenance, made the way a release manager makes one: GnuPG in batch mode, RSA (the
OpenPGP library Helm reads keyrings with takes RSA), no passphrase, exported as the binary keyrings Helm reads."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
