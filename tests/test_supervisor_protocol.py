"""The eventlistener protocol as pure functions."""
from __future__ import annotations

import pytest

from tests.helpers import frame
from watchdog.model import Envelope
from watchdog.sources import supervisor_protocol as proto


def test_header_is_parsed_into_tokens() -> None:
    """A real supervisord header gives every token, len as a number."""
    h = proto.parse_header(
        "ver:3.0 server:supervisor serial:21 pool:watchdog poolserial:10 eventname:PROCESS_STATE_FATAL len:54\n"
    )
    assert h["eventname"] == "PROCESS_STATE_FATAL"
    assert proto.payload_length(h) == 54
    assert h["pool"] == "watchdog"


@pytest.mark.parametrize(
    "line",
    ["", "garbage", "ver:3.0 len:5", "eventname:TICK_5", "eventname:TICK_5 len:-1", "eventname:TICK_5 len:x",
     f"eventname:TICK_5 len:{proto.MAX_PAYLOAD_CHARS + 1}"],
)
def test_malformed_headers_raise_protocol_error(line: str) -> None:
    """Missing eventname or len, or an absurd len, is a ProtocolError (never another exception)."""
    with pytest.raises(proto.ProtocolError):
        proto.parse_header(line)


def test_process_state_payload_decodes_pid_and_expected() -> None:
    env = Envelope({"eventname": "PROCESS_STATE_EXITED"},
                   "processname:k3s groupname:k3s from_state:RUNNING expected:0 pid:2766")
    change = proto.process_state_change(env)
    assert change is not None
    assert (change.name, change.to_state, change.from_state) == ("k3s", "EXITED", "RUNNING")
    assert change.pid == 2766 and change.expected is False


def test_backoff_payload_has_tries() -> None:
    env = Envelope({"eventname": "PROCESS_STATE_BACKOFF"}, "processname:k3s groupname:k3s from_state:STARTING tries:3")
    change = proto.process_state_change(env)
    assert change is not None and change.tries == 3 and change.pid is None


def test_non_state_events_and_unusable_payloads_give_none() -> None:
    assert proto.process_state_change(Envelope({"eventname": "TICK_5"}, "when:1")) is None
    assert proto.process_state_change(Envelope({"eventname": "PROCESS_STATE_RUNNING"}, "")) is None
    assert proto.process_state_change(Envelope({"eventname": "PROCESS_STATE_RUNNING"}, "no tokens here")) is None


def test_chinese_process_log_payload_keeps_its_lines() -> None:
    """PROCESS_LOG carries data after the first newline; non-ASCII text survives."""
    payload = "processname:init groupname:init pid:7 channel:stdout\n正在加载镜像\nerror: 磁盘空间不足\n"
    decoded = proto.log_lines(Envelope({"eventname": "PROCESS_LOG_STDOUT"}, payload))
    assert decoded == ("init", ["正在加载镜像", "error: 磁盘空间不足"])


def test_frame_len_counts_characters_not_bytes() -> None:
    """supervisord 4 counts characters (Supervisor/supervisor#1243); our test frames do the same."""
    f = frame("PROCESS_LOG_STDOUT", "processname:x\n中文")
    header, payload = f.split("\n", 1)
    assert proto.payload_length(proto.parse_header(header)) == len(payload) == 16
    assert len(payload.encode()) > len(payload)
