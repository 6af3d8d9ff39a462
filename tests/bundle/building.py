"""Build the bundle once per source state: ``packaging/build.sh`` into ``build/bundle-cache/<hash>/``.

The key hashes everything that goes into the bundle (the package, conf/, packaging/, setup.cfg,
pyproject.toml), so a rerun with unchanged sources reuses the files and a change rebuilds.
Used by the tests in this folder and by ``bench/bundle.py``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "bundle-cache"
BUILD_PYTHON = os.environ.get("BUNDLE_PYTHON", "/usr/bin/python3.11")
ONEDIR_PREFIX = "/usr/local/lib/rainbond-watchdog"
"""Where the onedir build must sit (its ELF interpreter path is absolute); see packaging/onedir.sh."""


class BundleUnavailable(Exception):
    """The bundle cannot be built on this machine (the reason says why)."""


@dataclass(frozen=True)
class Bundle:
    onefile: Path
    """dist/rainbond-watchdog: PyInstaller --onefile, made static by staticx."""
    onedir: Path
    """dist/rainbond-watchdog.d/: the same build unpacked, with its own C library."""


def source_files() -> list[Path]:
    files = [*(REPO / "watchdog").rglob("*.py"), *(REPO / "conf").iterdir(), *(REPO / "packaging").rglob("*"),
             REPO / "setup.cfg", REPO / "pyproject.toml"]
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts)


def source_hash() -> str:
    h = hashlib.sha256()
    for path in source_files():
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_bundle(timeout: float = 1500) -> Bundle:
    """The bundle for the current sources, built now unless the cache has it."""
    if not os.access(BUILD_PYTHON, os.X_OK):
        raise BundleUnavailable(f"{BUILD_PYTHON} not found (apt-get install python3.11 python3.11-venv "
                                "libpython3.11; .ci/run does)")
    dist = CACHE / source_hash()
    done = Bundle(dist / "rainbond-watchdog", dist / "rainbond-watchdog.d")
    marker = dist / ".complete"
    if marker.exists():
        return done
    if CACHE.exists():  # builds of older sources: keep only the current one
        for old in CACHE.iterdir():
            shutil.rmtree(old, ignore_errors=True)
    env = {**os.environ, "BUNDLE_DIST": str(dist), "BUNDLE_ONEDIR": "1", "BUNDLE_PYTHON": BUILD_PYTHON}
    run = subprocess.run([str(REPO / "packaging" / "build.sh")], cwd=str(REPO), env=env, capture_output=True,
                         text=True, timeout=timeout)
    if run.returncode != 0:
        raise AssertionError(f"packaging/build.sh failed ({run.returncode}):\n{run.stderr[-3000:]}")
    marker.write_text(source_hash() + "\n")
    return done
