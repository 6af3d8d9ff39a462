"""`status --watch`: the status text again whenever the status file changes, until interrupted.

On a terminal the screen is redrawn (same text as ``status``); without one (a pipe, a file)
each change is printed once, a heartbeat rewrite that changes only ``generated_at`` is not a
change. The file is looked at by ``stat`` every ``interval`` seconds (the listener replaces it
by rename, which changes its inode) and read again at least every ``RECHECK_SECONDS`` so that a
status going stale is seen. Ctrl-C (or SIGTERM) ends it with the exit status of ``status``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass
from types import FrameType
from typing import IO, Callable, Sequence

from watchdog.sinks.report import render_text
from watchdog.sinks.status_file import StatusUnavailable, exit_code, read_status

CLEAR = "\033[H\033[2J"
"""Cursor home, clear the screen (what ``clear`` and ``watch`` send)."""
RECHECK_SECONDS = 5.0
EXIT_UNUSABLE = 2


@dataclass(frozen=True)
class View:
    """One look at the status file: the text to show, its exit status, and what counts as a change."""

    text: str
    code: int
    key: str


def look(path: str, now: float, stale_seconds: float, languages: Sequence[str]) -> View:
    """The status file as ``status`` prints it, or the one sentence saying why there is none."""
    try:
        doc = read_status(path, now, stale_seconds)
    except StatusUnavailable as e:
        # Ages in the message tick every second: they are not a change.
        return View(f"rainbond-watchdog status: {e}\n", EXIT_UNUSABLE, re.sub(r"\d+", "#", str(e)))
    key = json.dumps({k: v for k, v in doc.items() if k != "generated_at"}, sort_keys=True, default=str)
    return View(render_text(doc, languages), exit_code(doc), key)


def stamp_of(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is replaced or rewritten; ``None`` when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def watch(
    path: str,
    read: Callable[[float], View],
    out: IO[str],
    terminal: bool,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show the status at once and again on every change, until interrupted; the last exit status."""
    shown: str | None = None
    code = EXIT_UNUSABLE
    seen: object = object()
    looked_at = -float("inf")
    try:
        previous: object = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: Ctrl-C alone ends it
        previous = None
    try:
        while True:
            now = clock()
            fp = stamp_of(path)
            if fp != seen or now - looked_at >= RECHECK_SECONDS:
                seen, looked_at = fp, now
                view = read(now)
                code = view.code
                if terminal and view.text != shown:
                    out.write(f"{CLEAR}{view.text}\n(watching {path}; Ctrl-C to stop)\n")
                    out.flush()
                    shown = view.text
                elif not terminal and view.key != shown:
                    out.write(view.text)
                    out.flush()
                    shown = view.key
            sleep(interval)
    except KeyboardInterrupt:
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
