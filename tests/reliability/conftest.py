"""Reliability fixtures: alerts captured as JSON lines, restored afterwards."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from watchdog.sinks import alerts


class Captured:
    """Everything the listener wrote to its (injected) stderr."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event]

    def reset(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def stderr_log() -> Iterator[Captured]:
    captured = Captured()
    alerts.configure(captured.stream, json=True)
    try:
        yield captured
    finally:
        alerts.configure()
