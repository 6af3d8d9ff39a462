"""Test helpers: real processes that are always reaped, bounded waits, protocol frames."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def frame(eventname: str, payload: str, serial: int = 1, pool: str = "watchdog") -> str:
    """A supervisord event as supervisord writes it: `len` counts characters."""
    header = (
        f"ver:3.0 server:supervisor serial:{serial} pool:{pool} poolserial:{serial} "
        f"eventname:{eventname} len:{len(payload)}\n"
    )
    return header + payload


def state_frame(to_state: str, name: str, from_state: str = "STARTING", serial: int = 1, **extra: object) -> str:
    tokens = [f"processname:{name}", f"groupname:{name}", f"from_state:{from_state}"]
    tokens += [f"{k}:{v}" for k, v in extra.items()]
    return frame(f"PROCESS_STATE_{to_state}", " ".join(tokens), serial)


def tick_frame(when: int, serial: int = 1, kind: str = "TICK_5") -> str:
    return frame(kind, f"when:{when}", serial)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_file(path: Path, timeout: float = 10.0) -> Path:
    wait_for(path.exists, timeout, what=f"file {path}")
    return path


class Reaper:
    """Starts processes and always ends them: terminate, wait, kill (psutil's tests do the same)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def spawn(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(list(argv), **kw)
        self.procs.append(p)
        return p

    def reap(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(timeout=10)


@contextmanager
def reaped() -> Iterator[Reaper]:
    r = Reaper()
    try:
        yield r
    finally:
        r.reap()


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (WORD, rest), continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out
