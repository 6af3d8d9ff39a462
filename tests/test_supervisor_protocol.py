"""The eventlistener protocol as pure functions."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import frame, wait_for
from watchdog.model import Envelope
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.supervisor_parent import parent_process


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


_TOKEN_VALUES = st.sampled_from(["k3s", "", "1", "0", "2766", "007", "a:b", "容器", "١٢", "RUNNING", "x y"])
_KEYS = st.sampled_from(["processname", "groupname", "from_state", "expected", "pid", "tries", "serial"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, _TOKEN_VALUES), max_size=7), st.sampled_from(["RUNNING", "EXITED", "STARTING"]),
       st.sampled_from(["", "\n", "\nsome data"]))
def test_the_event_path_decoder_agrees_with_the_full_parser(tokens: list[tuple[str, str]], to: str, tail: str) -> None:
    """``watched_state_change`` (one regular expression for supervisord's own token order) gives
    what ``process_state_change`` gives, for any tokens in any order, and ``None`` when unwatched."""
    payload = " ".join(f"{k}:{v}" for k, v in tokens) + tail
    full = proto.process_state_change(Envelope({"eventname": f"PROCESS_STATE_{to}"}, payload))
    watched = {full.name} if full is not None else {"k3s", "", "1"}
    assert proto.watched_state_change(f"PROCESS_STATE_{to}", payload, watched) == full
    assert proto.watched_state_change(f"PROCESS_STATE_{to}", payload, set()) is None


_HEADER_KEYS = st.sampled_from(["ver", "server", "serial", "pool", "poolserial", "eventname", "len", "x"])
_HEADER_VALUES = st.sampled_from(["3.0", "supervisor", "12", "", "a:b", "TICK_5", "54", "-1", "²", "x y", "容器"])
_SUPERVISORD_ORDER = ["ver", "server", "serial", "pool", "poolserial", "eventname", "len"]


def _full_parse(line: str) -> dict[str, str] | str:
    try:
        headers = proto.parse_tokens(line.strip())
        if "eventname" not in headers:
            raise proto.ProtocolError("header without eventname")
        proto.payload_length(headers)
        return headers
    except proto.ProtocolError as e:
        return f"error: {e}"


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.lists(st.tuples(_HEADER_KEYS, _HEADER_VALUES), max_size=8),
    st.lists(_HEADER_VALUES, min_size=7, max_size=7).map(lambda vs: list(zip(_SUPERVISORD_ORDER, vs, strict=True))),
), st.sampled_from(["\n", "", " \n", "\r\n"]))
def test_the_header_match_agrees_with_the_token_parser(tokens: list[tuple[str, str]], end: str) -> None:
    """``parse_header`` (one match for supervisord's own header) gives what the token parser gives,
    errors included, for any tokens in any order."""
    line = " ".join(f"{k}:{v}" for k, v in tokens) + end
    try:
        got: dict[str, str] | str = proto.parse_header(line)
    except proto.ProtocolError as e:
        got = f"error: {e}"
    assert got == _full_parse(line)


def test_supervisords_header_takes_the_fast_path() -> None:
    line = "ver:3.0 server:supervisor serial:21 pool:watchdog poolserial:10 eventname:PROCESS_STATE_FATAL len:54"
    assert proto._HEADER.fullmatch(line) is not None


@pytest.mark.parametrize("payload", [
    "processname:k3s groupname:k3s from_state:RUNNING expected:0 pid:2766",
    "processname:k3s groupname:k3s from_state:STOPPED tries:0",
    "processname:k3s groupname:k3s from_state:STARTING pid:12",
    "processname:k3s groupname:k3s from_state:RUNNING pid:12",
])
def test_supervisords_own_payloads_take_the_fast_path(payload: str) -> None:
    """The payloads supervisord 3 and 4 write (events.py) are read by the one match."""
    assert proto._STATE_PAYLOAD.fullmatch(payload) is not None


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


# ------------------------------------------------------------------ which unit `len` counts in (issue 9)


def _never() -> str | None:
    raise AssertionError("the version is only asked when the interpreter does not tell")


@pytest.mark.parametrize(
    ("exe", "argv", "unit"),
    [
        ("/usr/bin/python2.7", ("/usr/bin/python", "/usr/bin/supervisord", "-c", "/etc/supervisor/supervisord.conf"),
         "bytes"),
        ("", ("/usr/bin/python2.7", "/usr/bin/supervisord", "-n"), "bytes"),  # exe unreadable: argv[0]
        ("/usr/local/bin/python3.11", ("/usr/local/bin/python3.11", "/usr/local/bin/supervisord"), "characters"),
        ("/opt/pyenv/versions/2.7.18/bin/python2.7", ("python2.7", "-c", "from supervisor.supervisord import main"),
         "bytes"),
    ],
)
def test_auto_reads_supervisords_interpreter(exe: str, argv: tuple[str, ...], unit: str) -> None:
    choice = proto.choose_len_unit("auto", under_supervisord=True, parent_exe=exe, parent_argv=argv,
                                   ask_version=_never)
    assert choice.unit == unit
    assert "Python" in choice.reason


@pytest.mark.parametrize(("version", "unit"), [("3.3.1", "bytes"), ("3.4.0", "bytes"), ("4.3.0", "characters"),
                                               (None, "characters"), ("garbage", "characters")])
def test_auto_asks_the_version_when_the_interpreter_does_not_tell(version: str | None, unit: str) -> None:
    """An interpreter named plainly ``python``, or a parent that is no supervisord: the version decides."""
    asked: list[bool] = []

    def ask() -> str | None:
        asked.append(True)
        return version

    for exe, argv in [("/usr/bin/python", ("/usr/bin/python", "/usr/bin/supervisord")),
                      ("/usr/bin/python2.7", ("/usr/bin/python2.7", "some_other_tool.py"))]:
        choice = proto.choose_len_unit("auto", under_supervisord=True, parent_exe=exe, parent_argv=argv,
                                       ask_version=ask)
        assert choice.unit == unit
    assert len(asked) == 2


def test_configured_unit_and_no_supervisord_need_no_look() -> None:
    assert proto.choose_len_unit("bytes", under_supervisord=True, ask_version=_never).unit == "bytes"
    assert proto.choose_len_unit("characters", under_supervisord=True, parent_exe="/usr/bin/python2.7",
                                 parent_argv=("supervisord",), ask_version=_never).unit == "characters"
    assert proto.choose_len_unit("auto", under_supervisord=False, ask_version=_never).unit == "characters"


@pytest.mark.parametrize(("path", "major"), [("/usr/bin/python2.7", 2), ("python3", 3), ("/x/python3.11", 3),
                                             ("/usr/bin/python", None), ("/usr/bin/pypy", 2), ("/bin/dash", None),
                                             ("/usr/bin/python2.7-config", None)])
def test_python_major(path: str, major: int | None) -> None:
    assert proto.python_major(path) == major


def test_parent_process_reads_exe_and_argv_of_a_live_process() -> None:
    """The thin /proc reader: a known child's interpreter and arguments."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "supervisord-marker"])
    try:
        # Right after exec, /proc/<pid>/cmdline can still read empty: wait until it is filled in.
        found = wait_for(lambda: (p := parent_process(child.pid)).argv and p, 5, what="the child's cmdline")
        assert found.exe == os.path.realpath(sys.executable)
        assert found.argv[-1] == "supervisord-marker"
        gone = parent_process(2**22 + 12345)  # above pid_max: no such process
        assert (gone.exe, gone.argv) == ("", ())
    finally:
        child.kill()
        child.wait()
