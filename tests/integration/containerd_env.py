"""Configs for the real containerd, kept inside a temporary folder (root, state, sockets)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CONTAINERD = shutil.which("containerd")


def require_containerd() -> str:
    """The containerd binary, or a skip saying why (CI installs it and runs as root)."""
    if CONTAINERD is None:
        pytest.skip("containerd is not installed (apt-get install containerd; .ci/run does it)")
    if os.geteuid() != 0:
        pytest.skip("the real containerd needs root")
    return CONTAINERD


def write_config(folder: Path, socket: Path | None = None, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sock = socket or folder / "containerd.sock"
    conf = folder / "config.toml"
    conf.write_text(
        "version = 2\n"
        f'root = "{folder / "root"}"\n'
        f'state = "{folder / "state"}"\n'
        f"{extra}"
        "[grpc]\n"
        f'  address = "{sock}"\n'
    )
    return conf
