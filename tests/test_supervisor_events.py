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


@pytest.mark.parametrize("unit", ["characters", "bytes"])
def test_whole_reads_over_a_pipe_give_what_line_by_line_reading_gives(unit: str) -> None:
    """An envelope that arrives in one read is taken whole (the usual case); anything else (two
    in one write, a header split between writes, non-ASCII text, a bad header, a short payload
    at the end) goes the long way. Over a real pipe, every envelope comes out as from a buffer."""
    def encoded(text: str) -> bytes:
        if unit == "characters":
            return text.encode()
        head, _, payload = text.partition("\n")  # a byte-counted len (supervisord 3)
        head = head.rsplit(" len:", 1)[0] + f" len:{len(payload.encode('utf-8'))}"
        return f"{head}\n{payload}".encode()

    writes = [
        encoded(tick_frame(1, 1)),
        encoded(state_frame("RUNNING", "k3s", serial=2, pid=42)) + encoded(tick_frame(3, 3)),
        encoded(frame("PROCESS_LOG_STDOUT", "processname:init groupname:init pid:1 channel:stdout\n加载镜像", 4)),
        b"ver:3.0 server:supervisor serial:5 pool:watchdog poolserial:5 eventname:TICK_5 ",
        b"len:6\nwhen:5",
        b"this is no header\n",
        encoded(tick_frame(7, 7)),
        encoded(state_frame("STARTING", "k3s", serial=8, tries=0))[:-4],
    ]

    def drain(channel: EventChannel, feed: list[bytes], w: int | None) -> list[object]:
        got: list[object] = []
        for i, chunk in enumerate(feed):
            if w is not None:
                os.write(w, chunk)
                if i == len(feed) - 1:
                    os.close(w)
            if w is not None and (chunk.endswith(b" ") or chunk is feed[-1]):
                continue  # the rest of this envelope comes with the next write
            try:
                got.append(channel.read())
            except events.proto.ProtocolError as e:
                got.append(f"refused: {e}")
        while True:
            try:
                e = channel.read()
            except events.proto.ProtocolError as err:
                got.append(f"refused: {err}")
                continue
            got.append(e)
            if e is None:
                return got

    r, w = os.pipe()
    with os.fdopen(r, "rb", buffering=0) as rfile:
        piped = drain(EventChannel(rfile, io.StringIO(), len_unit=unit, resync_seconds=0.05), writes, w)  # type: ignore[arg-type]
    buffered = drain(EventChannel(io.BytesIO(b"".join(writes)), io.StringIO(), len_unit=unit), [b""] * 6, None)  # type: ignore[arg-type]
    envelopes = [e for e in piped if isinstance(e, events.Envelope)]
    assert [e.eventname for e in envelopes][:6] == ["TICK_5", "PROCESS_STATE_RUNNING", "TICK_5", "PROCESS_LOG_STDOUT",
                                                     "TICK_5", "TICK_5"]
    assert envelopes[3].payload.endswith("加载镜像") and envelopes[4].payload == "when:5"
    assert any(isinstance(e, str) and e.startswith("refused") for e in piped)
    assert piped == buffered
