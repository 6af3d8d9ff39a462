"""The event channel over injected text streams, and the listener loop on finite input."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.helpers import frame, state_frame, tick_frame
from watchdog.app import Monitor, listen
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.sources import supervisor_events as events
from watchdog.sources.supervisor_events import EventChannel

OKS = "RESULT 2\nOK"


def run(stream: str, settings: Settings, rulebook: RuleBook, now: float = 1_000_000.0) -> tuple[int, str, Monitor]:
    out = io.StringIO()
    channel = EventChannel(io.StringIO(stream), out)
    mon = Monitor(settings, rulebook, clock=lambda: now)
    code = listen(settings, rulebook, channel, env={}, clock=lambda: now, monitor=mon)
    return code, out.getvalue(), mon


def test_every_event_is_answered_and_end_of_input_exits_zero(settings: Settings, rulebook: RuleBook) -> None:
    stream = tick_frame(1, 1) + frame("SUPERVISOR_STATE_CHANGE_RUNNING", "", 2) + frame("SOMETHING_NEW", "x:y", 3)
    code, out, _ = run(stream, settings, rulebook)
    assert code == 0
    assert out == ("READY\n" + OKS) * 3 + "READY\n"


def test_chinese_payload_is_read_by_characters(settings: Settings, rulebook: RuleBook) -> None:
    """A len that counts characters keeps the stream in step: the next event is still parsed."""
    stream = frame("PROCESS_LOG_STDOUT", "processname:init groupname:init pid:1 channel:stdout\n加载镜像失败：磁盘已满", 1)
    stream += state_frame("RUNNING", "k3s", serial=2, pid=42)
    code, out, mon = run(stream, settings, rulebook)
    assert code == 0 and out.count(OKS) == 2
    assert mon.processes["k3s"].state == "RUNNING" and mon.processes["k3s"].pid == 42


def test_malformed_header_is_answered_and_the_loop_goes_on(settings: Settings, rulebook: RuleBook) -> None:
    stream = "this is not a header\n" + state_frame("RUNNING", "k3s", serial=2, pid=9)
    code, out, mon = run(stream, settings, rulebook)
    assert code == 0 and out.count(OKS) == 2
    assert mon.processes["k3s"].state == "RUNNING"


def test_a_crashing_handler_still_answers_ok(settings: Settings, rulebook: RuleBook, tmp_path: Path) -> None:
    """FAIL would make supervisord resend forever: handling errors are logged and answered OK."""
    out = io.StringIO()
    mon = Monitor(settings, rulebook, clock=lambda: 1.0)

    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    mon.handle = boom  # type: ignore[method-assign]
    stream = state_frame("FATAL", "k3s", serial=1) + tick_frame(2, 2)
    code = listen(settings, rulebook, EventChannel(io.StringIO(stream), out), env={}, clock=lambda: 1.0, monitor=mon)
    assert code == 0 and out.getvalue().count(OKS) == 2


def test_truncated_payload_at_end_of_input_ends_cleanly(settings: Settings, rulebook: RuleBook) -> None:
    stream = "ver:3.0 server:supervisor serial:1 pool:w poolserial:1 eventname:TICK_5 len:100\nwhen:1"
    code, out, _ = run(stream, settings, rulebook)
    assert code == 0 and out.startswith("READY\n")


def test_each_answer_and_the_next_ready_leave_in_one_write_on_a_real_pipe(
    settings: Settings, rulebook: RuleBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a real pipe every event costs one write: ``RESULT 2\\nOK`` and ``READY\\n`` together
    (supervisord 3.3.1 and 4 both parse what is left in their buffer, see ``ok_and_ready``)."""
    read_end, write_end = os.pipe()
    stdout = os.fdopen(write_end, "w", encoding="utf-8")
    stream = tick_frame(1, 1) + frame("SOMETHING_NEW", "x:y", 2)
    channel = EventChannel(io.StringIO(stream), stdout)
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes | memoryview) -> int:
        if fd == write_end:
            writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(events.os, "write", counting_write)
    code = listen(settings, rulebook, channel, env={}, clock=lambda: 1_000_000.0,
                  monitor=Monitor(settings, rulebook, clock=lambda: 1_000_000.0))
    monkeypatch.undo()
    stdout.close()
    with os.fdopen(read_end, "rb") as r:
        sent = r.read()
    assert code == 0
    assert writes == [b"READY\n", (OKS + "READY\n").encode(), (OKS + "READY\n").encode()]
    assert sent == b"".join(writes)


def test_a_short_write_is_completed_never_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe may take fewer bytes than asked: the rest follows, nothing is sent twice."""
    read_end, write_end = os.pipe()
    stdout = os.fdopen(write_end, "w", encoding="utf-8")
    channel = EventChannel(io.StringIO(""), stdout)
    real_write = os.write
    calls = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data)[:5])

    monkeypatch.setattr(events.os, "write", short_write)
    channel.ok_and_ready()
    channel.ready()
    monkeypatch.undo()
    stdout.close()
    with os.fdopen(read_end, "rb") as r:
        assert r.read() == (OKS + "READY\n" + "READY\n").encode()
    assert calls[0] == len(OKS + "READY\n") and len(calls) > 2
