"""``status`` and ``check``: read the status file and decide, importing nothing heavy.

``check`` is Docker's HEALTHCHECK, run every 30 s for the container's whole life: it imports only
the config, the status file reader and the text report (see ``bench/bundle.py`` for its CPU).
"""
from __future__ import annotations

import json
import time
from typing import IO

from watchdog.config import Settings
from watchdog.sinks.report import render_text
from watchdog.sinks.status_file import exit_code, read_status


def run_status(
    settings: Settings, file: str | None, *, as_json: bool, out: IO[str] | None, now: float | None = None
) -> int:
    """``status`` (``out`` given) and ``check`` (silent): 0 healthy/starting, 1 degraded/failed."""
    path = file or settings.status_file
    doc = read_status(path, time.time() if now is None else now, settings.stale_seconds)
    if out is not None:
        if as_json:
            out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        else:
            out.write(render_text(doc, settings.languages))
    return exit_code(doc)
