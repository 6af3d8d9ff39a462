"""Both framings (issue 9): bytes (supervisord 3 on Python 2) and characters (supervisord 4), on real pipes too."""
from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest

from tests.framing import (
    DOTS,
    IMAGE_OUTPUT,
    Unit,
    envelope,
    expected_text,
    init_line,
    listening,
    log_payload,
    state_envelope,
)
from tests.helpers import tick_frame
from tests.reliability.conftest import Captured
from tests.reliability.conftest import stderr_log as stderr_log  # the fixture
from watchdog.app import Monitor, choose_len_unit, listen
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.supervisor_events import RESYNC_SECONDS, EventChannel
from watchdog.sources.supervisor_rpc import RpcUnavailable

UNITS: list[Unit] = ["bytes", "characters"]


def image_stream(unit: Unit) -> tuple[bytes, list[str]]:
    """Every image line as its own PROCESS_LOG event, then a k3s state event; the payloads expected."""
    data, expected = b"", []
    for serial, line in enumerate(IMAGE_OUTPUT, 1):
        payload = log_payload(line, unit)
        data += envelope("PROCESS_LOG_STDOUT", payload, unit, serial)
        expected.append(expected_text(payload))
    state = state_envelope("RUNNING", "k3s", len(IMAGE_OUTPUT) + 1, unit, pid=42)
    return data + state, [*expected, expected_text(state.partition(b"\n")[2])]


@pytest.mark.parametrize("unit", UNITS)
def test_image_output_keeps_the_stream_in_step_under_either_framing(unit: Unit) -> None:
    """ANSI colours, runs of ·, Chinese, invalid bytes, 200 KB lines: each payload is read whole."""
    data, expected = image_stream(unit)
    channel = EventChannel(io.BytesIO(data), io.StringIO(), len_unit=unit)
    got = []
    while (env := channel.read()) is not None:
        got.append(env.payload)
    assert got == expected
    assert channel.resyncs == 0
    assert DOTS in got[0] and "加载镜像失败" in got[3]
    assert ("\ufffd" if unit == "bytes" else "Undecodable: b'half") in got[4]


@pytest.mark.parametrize("unit", UNITS)
def test_image_output_over_real_pipes_is_answered_and_diagnosed(
    unit: Unit, settings: Settings, rulebook: RuleBook
) -> None:
    """The same stream through os.pipe, one event at a time, under the listener loop."""
    mon = Monitor(settings, rulebook)
    data, _ = image_stream(unit)
    cfg = dataclasses.replace(settings, supervisor_len_unit=unit)

    def run_listener(stdin: Any, stdout: Any) -> None:
        listen(cfg, rulebook, EventChannel(stdin, stdout), env={}, monitor=mon)

    frames = data.split(b"ver:3.0 ")[1:]
    with listening(run_listener) as sup:
        for f in frames:
            assert sup.send(b"ver:3.0 " + f) < 1.0
    assert mon.processes["k3s"].state == "RUNNING" and mon.processes["k3s"].pid == 42


def test_a_byte_counted_payload_read_by_characters_is_answered_within_a_second(
    settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """supervisord 3 counts bytes: a characters reader comes up short, answers, and finds the next header."""
    mon = Monitor(settings, rulebook)
    cfg = dataclasses.replace(settings, supervisor_len_unit="characters")

    def run_listener(stdin: Any, stdout: Any) -> None:
        listen(cfg, rulebook, EventChannel(stdin, stdout), env={}, monitor=mon)

    waits = []
    with listening(run_listener) as sup:
        for serial in (1, 2):
            line = init_line("INFO", f"Containerd is starting, please wait {DOTS}")
            waits.append(sup.send(envelope("PROCESS_LOG_STDOUT", log_payload(line, "bytes"), "bytes", serial)))
        assert sup.send(state_envelope("FATAL", "k3s", 3, "bytes", pid=0)) < 0.5
    assert all(RESYNC_SECONDS * 0.9 < w < 1.0 for w in waits), waits
    assert mon.processes["k3s"].state == "FATAL"
    resync = stderr_log.named("protocol_resync")
    assert len(resync) == 1 and resync[0]["unit"] == "characters" and resync[0]["received"] < resync[0]["len"]
    assert stderr_log.named("listener_stopped")[0]["resyncs"] == 2
    assert not stderr_log.named("protocol_error")


def test_a_payload_interrupted_longer_than_the_bound_is_answered_and_its_tail_skipped(
    settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """A false resync (supervisord stalled mid-payload): its tail is skipped, not answered."""
    mon = Monitor(settings, rulebook)
    payload = log_payload(b"line one\nline two\n" + "镜像".encode() * 100 + b"\nend of the tail", "characters")
    data = envelope("PROCESS_LOG_STDOUT", payload, "characters", 1)
    head, tail = data[:120], data[120:]

    def run_listener(stdin: Any, stdout: Any) -> None:
        listen(settings, rulebook, EventChannel(stdin, stdout), env={}, monitor=mon)

    with listening(run_listener) as sup:
        sup.expect(b"READY\n", 5)
        sup.write(head)
        assert sup.expect(b"RESULT 2\nOK", 5) < 1.0  # answered while the tail is still missing
        sup.expect(b"READY\n", 5)
        sup.write(tail)  # supervisord resumes: the tail, then the next event right after it
        sup.write(state_envelope("RUNNING", "k3s", 2, "characters", pid=5))
        assert sup.expect(b"RESULT 2\nOK", 5) < 0.5
    assert mon.processes["k3s"].pid == 5
    assert len(stderr_log.named("protocol_resync")) == 1
    assert not stderr_log.named("protocol_error")


@pytest.mark.parametrize("unit", UNITS)
def test_invalid_bytes_in_a_header_line_are_refused_and_answered(unit: Unit) -> None:
    out = io.StringIO()
    data = b"\xff\xfe not \xc3\x28 a header\n" + state_envelope("RUNNING", "k3s", 2, unit)
    channel = EventChannel(io.BytesIO(data), out, len_unit=unit)
    with pytest.raises(proto.ProtocolError):
        channel.read()
    env = channel.read()
    assert env is not None and env.eventname == "PROCESS_STATE_RUNNING"


def test_a_line_too_long_for_a_header_is_skipped_without_holding_it() -> None:
    data = b"x" * (3 * 1024 * 1024) + b"\n" + state_envelope("RUNNING", "k3s", 2, "bytes")
    channel = EventChannel(io.BytesIO(data), io.StringIO(), len_unit="bytes")
    with pytest.raises(proto.ProtocolError, match="longer than"):
        channel.read()
    env = channel.read()
    assert env is not None and env.eventname == "PROCESS_STATE_RUNNING"


def test_characters_pushed_back_when_invalid_bytes_overshoot() -> None:
    """A pending partial sequence completed by an ASCII byte yields two characters: none is lost."""
    # len:2 over b"\xe4" + b"A" + b"B...": U+FFFD and "A" are the payload, "B" starts the next line.
    data = b"ver:3.0 eventname:TICK_5 len:2\n\xe4A" + state_envelope("RUNNING", "k3s", 2, "characters")
    channel = EventChannel(io.BytesIO(data), io.StringIO(), len_unit="characters")
    first = channel.read()
    assert first is not None and first.payload == "\ufffdA"
    second = channel.read()
    assert second is not None and second.eventname == "PROCESS_STATE_RUNNING"


def test_len_unit_choice_is_logged_once_at_start(settings: Settings, rulebook: RuleBook,
                                                stderr_log: Captured) -> None:
    cfg = dataclasses.replace(settings, supervisor_len_unit="bytes")
    channel = EventChannel(io.BytesIO(tick_frame(1).encode()), io.StringIO())
    assert listen(cfg, rulebook, channel, env={}) == 0
    chosen = stderr_log.named("supervisor_len_unit")
    assert [(c["unit"], c["configured"]) for c in chosen] == [("bytes", "bytes")]
    assert channel.len_unit == "bytes"


@pytest.mark.parametrize("unit", UNITS)
def test_a_header_split_across_a_buffer_compaction_is_found(unit: Unit) -> None:
    """The reader drops consumed bytes while a header is still incomplete: the header stays whole."""
    target = 2 * 65536 - 10  # the second header straddles the end of the second 64 KiB read
    filler = target
    for _ in range(3):  # the header's len digits grow with the payload: settle the size
        payload = log_payload(b"x" * filler, unit)
        data = envelope("PROCESS_LOG_STDOUT", payload, unit, 1)
        filler -= len(data) - target
    assert len(data) == 2 * 65536 - 10
    second_frame = state_envelope("RUNNING", "k3s", 2, unit, pid=3)
    data += second_frame + state_envelope("FATAL", "k3s", 3, unit)
    channel = EventChannel(io.BytesIO(data), io.StringIO(), len_unit=unit)
    first, second, third = channel.read(), channel.read(), channel.read()
    assert first is not None and len(first.payload) == len(expected_text(payload))
    assert second is not None and second.headers["serial"] == "2"
    assert second.payload == second_frame.partition(b"\n")[2].decode()
    assert third is not None and third.eventname == "PROCESS_STATE_FATAL"
    assert channel.read() is None


@pytest.mark.parametrize("unit", UNITS)
def test_an_overstated_len_is_answered_within_a_second_with_one_stderr_line(
    unit: Unit, settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """Under either framing: a payload shorter than its len never waits for bytes that will not come."""
    mon = Monitor(settings, rulebook)
    cfg = dataclasses.replace(settings, supervisor_len_unit=unit)

    def run_listener(stdin: Any, stdout: Any) -> None:
        listen(cfg, rulebook, EventChannel(stdin, stdout), env={}, monitor=mon)

    with listening(run_listener) as sup:
        sup.expect(b"READY\n", 5)  # start-up lines are written by now
        before = len(stderr_log.events())
        took = sup.send(after_ready=False, data=b"ver:3.0 server:supervisor serial:1 pool:watchdog poolserial:1 eventname:PROCESS_LOG_STDOUT "
                        b"len:500\nprocessname:init_rainbond groupname:init_rainbond pid:7 channel:stdout\nshort")
        assert took < 1.0
        assert len(stderr_log.events()) - before <= 1
        assert sup.send(state_envelope("RUNNING", "k3s", 2, unit, pid=8)) < 0.5
    assert mon.processes["k3s"].pid == 8
    assert [e["len"] for e in stderr_log.named("protocol_resync")] == [500]


class _Rpc:
    def __init__(self, version: str | None) -> None:
        self.version = version

    def supervisor_version(self) -> str:
        if self.version is None:
            raise RpcUnavailable("supervisord is not answering")
        return self.version


@pytest.mark.parametrize(("env", "version", "unit"), [
    ({"SUPERVISOR_ENABLED": "1"}, "3.3.1", "bytes"),  # the test's parent is no supervisord: the version decides
    ({"SUPERVISOR_ENABLED": "1"}, "4.3.0", "characters"),
    ({"SUPERVISOR_ENABLED": "1"}, None, "characters"),  # RPC down: characters, and short payloads resync
    ({}, "3.3.1", "characters"),  # not under supervisord at all: nothing is asked
])
def test_auto_reads_the_parent_then_asks_the_version(
    settings: Settings, env: dict[str, str], version: str | None, unit: str
) -> None:
    choice = choose_len_unit(settings, env, _Rpc(version))  # type: ignore[arg-type]
    assert choice.unit == unit
    if env and version:
        assert version in choice.reason
