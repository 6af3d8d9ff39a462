"""An empty root to run the bundle in: nothing but the bundle, /tmp, /proc and /app/{logs,status}.

``chroot`` (argv lists, no shell) proves that the bundle needs nothing from the machine around
it: no C library, no Python, no /etc. /proc is mounted for the time of the ``with`` and always
unmounted again. Needs root.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bundle.building import ONEDIR_PREFIX, Bundle

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
ONEFILE_AT = "/rainbond-watchdog"
ONEDIR_AT = ONEDIR_PREFIX + "/rainbond-watchdog"
VARIANTS = ("onefile", "onedir")


@dataclass
class EmptyRoot:
    path: Path
    command: str
    """The bundle's path inside the root."""
    mounts: list[Path] = field(default_factory=list)

    def inside(self, where: str) -> Path:
        """The host path of ``where`` (an absolute path inside the root)."""
        return self.path / where.lstrip("/")

    def argv(self, *args: str) -> list[str]:
        return [CHROOT, str(self.path), self.command, *args]

    def run(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        return subprocess.run(self.argv(*args), env=env if env is not None else clean_env(), **kw)

    def bind(self, host: Path, where: str) -> None:
        """Bind-mount a host folder read-only at ``where`` inside the root (unmounted at the end)."""
        target = self.inside(where)
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(host), str(target)], check=True)
        self.mounts.append(target)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)


def clean_env(**extra: str) -> dict[str, str]:
    """What supervisord's child would get in the image, without the host's Python settings."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


def is_root() -> bool:
    return os.geteuid() == 0


def cannot_mount(base: Path) -> str | None:
    """Why /proc cannot be mounted here (a container without CAP_SYS_ADMIN), or None when it can."""
    target = base / "probe-proc"
    target.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "proc", "proc", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot mount /proc for the empty root: {done.stderr.strip() or done.returncode}"
    subprocess.run(["umount", str(target)], check=True)
    return None


@contextmanager
def empty_root(base: Path, bundle: Bundle, variant: str) -> Iterator[EmptyRoot]:
    """A root holding only the chosen build (``onefile`` or ``onedir``), /tmp, /proc, /app/{logs,status}."""
    root = base / f"root-{variant}"
    root.mkdir()
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    for sub in ("proc", "app/logs", "app/status"):
        (root / sub).mkdir(parents=True)
    if variant == "onefile":
        shutil.copy2(bundle.onefile, root / ONEFILE_AT.lstrip("/"))
        command = ONEFILE_AT
    else:
        shutil.copytree(bundle.onedir, root / ONEDIR_PREFIX.lstrip("/"), symlinks=True)
        command = ONEDIR_AT
    er = EmptyRoot(root, command)
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    er.mounts.append(root / "proc")
    try:
        yield er
    finally:
        for target in reversed(er.mounts):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)


def entries(root: Path, skip: Sequence[str] = ("proc",)) -> list[str]:
    """Every path in the root (relative), /proc excepted: what the bundle left behind."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in skip]
        found += [str(rel / name) for name in dirs + files]
    return sorted(found)
