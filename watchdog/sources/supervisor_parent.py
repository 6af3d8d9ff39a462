"""The listener's parent process (supervisord), read from /proc: which interpreter runs it.

Thin on purpose: the decision is ``supervisor_protocol.choose_len_unit``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ParentProcess:
    pid: int
    exe: str
    """The resolved ``/proc/<pid>/exe`` ("" when it cannot be read, e.g. without privileges)."""
    argv: tuple[str, ...]


def parent_process(pid: int | None = None, proc: str = "/proc") -> ParentProcess:
    """The interpreter and command line of ``pid`` (default: our parent); empty fields when unreadable."""
    pid = os.getppid() if pid is None else pid
    try:
        exe = os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        exe = ""
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            raw = f.read(64 * 1024)
    except OSError:
        raw = b""
    argv = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)
    return ParentProcess(pid, exe, argv)
