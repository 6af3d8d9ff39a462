"""Protocol fuzzing: whatever arrives on stdin, the listener lives, answers, and keeps stdout clean.

Streams are built from items: well-formed events (known, unknown, empty, huge, non-ASCII
payloads, headers with odd extra fields) and malformed header lines (no eventname, no len, a len
that is not a number or is too big, random text). Every item must be answered with exactly one
``RESULT 2\\nOK`` and followed by ``READY``; nothing else may reach stdout.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.helpers import frame, state_frame
from tests.reliability.conftest import Captured
from watchdog.app import listen
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.supervisor_events import EventChannel

READY = "READY\n"
OK = "RESULT 2\nOK"
REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ strategies

_no_space = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=0, max_size=12
).filter(lambda s: len(s.split()) == 1 if s else True)
"""A header or payload token value: any characters that ``str.split()`` keeps in one piece."""

_ascii_value = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
_any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
_states = st.sampled_from(["STARTING", "RUNNING", "BACKOFF", "EXITED", "FATAL", "STOPPING", "STOPPED", "UNKNOWN"])
_programs = st.one_of(st.sampled_from(["containerd", "k3s", "console", "init", "watchdog"]), _no_space)


@st.composite
def _huge(draw: st.DrawFn) -> str:
    size = draw(st.sampled_from([64 * 1024, 1024 * 1024, 3 * 1024 * 1024]))
    unit = draw(st.sampled_from(["x", "镜像", "line\n", "\0", "é\r\n"]))
    return unit * (size // len(unit))


@st.composite
def state_payload(draw: st.DrawFn) -> tuple[str, str]:
    tokens = [f"processname:{draw(_programs)}", f"groupname:{draw(_programs)}", f"from_state:{draw(_states)}"]
    for key in draw(st.lists(st.sampled_from(["pid", "expected", "tries", "odd", "spawnerr"]), max_size=4)):
        tokens.append(f"{key}:{draw(st.one_of(st.integers(-5, 10**12).map(str), _no_space))}")
    payload = " ".join(draw(st.permutations(tokens)))
    if draw(st.booleans()):
        payload = draw(_any_text)  # a state event whose payload is not tokens at all
    return f"PROCESS_STATE_{draw(_states)}", payload


@st.composite
def log_payload(draw: st.DrawFn) -> tuple[str, str]:
    head = f"processname:{draw(_programs)} groupname:x pid:{draw(st.integers(0, 99999))} channel:stdout"
    body = draw(st.one_of(_any_text, _huge(), st.just("")))
    return draw(st.sampled_from(["PROCESS_LOG_STDOUT", "PROCESS_LOG_STDERR", "PROCESS_COMMUNICATION_STDOUT"])), head + "\n" + body


@st.composite
def other_payload(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.one_of(
        st.sampled_from(["TICK_5", "TICK_60", "TICK_3600", "SUPERVISOR_STATE_CHANGE_RUNNING", "PROCESS_GROUP_ADDED",
                         "REMOTE_COMMUNICATION", "EVENT_BUFFER_OVERFLOW"]),
        st.from_regex(r"\A[A-Z][A-Z0-9_]{0,30}\Z"),
    ))
    payload = draw(st.one_of(st.just(""), st.integers(0, 2**40).map(lambda n: f"when:{n}"), _any_text, _huge()))
    return name, payload


@st.composite
def well_formed(draw: st.DrawFn) -> str:
    """A frame as supervisord writes it, sometimes with odd or missing optional header fields."""
    eventname, payload = draw(st.one_of(state_payload(), log_payload(), other_payload()))
    tokens = [f"eventname:{eventname}", f"len:{len(payload)}"]
    optional = ["ver:3.0", "server:supervisor", f"serial:{draw(st.integers(0, 10**9))}", "pool:watchdog",
                f"poolserial:{draw(st.integers(0, 10**9))}"]
    tokens += [t for t in optional if draw(st.booleans())]
    tokens += [f"x{draw(st.integers(0, 9))}:{draw(_ascii_value)}" for _ in range(draw(st.integers(0, 2)))]
    return " ".join(draw(st.permutations(tokens))) + "\n" + payload


@st.composite
def malformed_line(draw: st.DrawFn) -> str:
    """One header line that the protocol must refuse (no payload follows it)."""
    kind = draw(st.sampled_from(["text", "no-eventname", "no-len", "bad-len", "huge-len", "empty"]))
    if kind == "text":
        line = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                            max_size=200).filter(lambda s: "eventname:" not in s))
    elif kind == "no-eventname":
        line = f"ver:3.0 server:supervisor serial:1 len:{draw(st.integers(0, 50))}"
    elif kind == "no-len":
        line = "ver:3.0 server:supervisor serial:1 eventname:TICK_5"
    elif kind == "bad-len":
        bad = draw(st.one_of(
            st.sampled_from(["", "-1", "abc", "1.5", "0x10", "²", "①", "١٢", "৩", "1_000", " "]),
            _no_space.filter(lambda s: not (s.isascii() and s.isdigit())),
        ))
        line = f"ver:3.0 eventname:TICK_5 len:{bad}"
    elif kind == "huge-len":
        line = f"ver:3.0 eventname:TICK_5 len:{proto.MAX_PAYLOAD_CHARS + draw(st.integers(1, 10**12))}"
    else:
        line = ""
    return line + "\n"


@st.composite
def stream(draw: st.DrawFn) -> tuple[str, int]:
    items = draw(st.lists(st.one_of(well_formed(), malformed_line()), max_size=25))
    text = "".join(items)
    answered = len(items)
    if draw(st.booleans()):
        # End of input inside a payload: what came is handed over and answered too.
        text += "ver:3.0 eventname:PROCESS_LOG_STDOUT len:100\nprocessname:init channel:stdout\npartial"
        answered += 1
    return text, answered


# ------------------------------------------------------------------ in-process fuzzing


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=stream())
def test_listener_survives_any_stream_and_answers_every_item(
    case: tuple[str, int], settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """Random and malformed streams: exit 0 at EOF, one OK per item, stdout only protocol tokens."""
    text, answered = case
    stderr_log.reset()
    out = io.StringIO()
    code = listen(settings, rulebook, EventChannel(io.StringIO(text), out), env={})
    assert code == 0
    assert out.getvalue() == READY + (OK + READY) * answered
    events = stderr_log.events()  # every stderr line is one JSON object
    assert not [e for e in events if e["event"] in ("event_handling_failed", "startup_check_failed")], events[-3:]


# ------------------------------------------------------------------ bytes framing (supervisord 3 on Python 2)

_raw_bytes = st.binary(max_size=200)
"""What a program may print: supervisord 3 passes it through undecoded, invalid UTF-8 included."""


@st.composite
def well_formed_bytes(draw: st.DrawFn) -> bytes:
    """A frame as supervisord 3.3.1 writes it: ``len`` counts the payload's bytes."""
    eventname, payload = draw(st.one_of(state_payload(), log_payload(), other_payload()))
    data = payload.encode("utf-8")
    if eventname.startswith("PROCESS_LOG") and draw(st.booleans()):
        data += draw(_raw_bytes)
    tokens = [f"ver:3.0 server:supervisor serial:{draw(st.integers(0, 10**9))} pool:watchdog",
              f"eventname:{eventname}", f"len:{len(data)}"]
    return " ".join(tokens).encode() + b"\n" + data


@st.composite
def stream_bytes(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """(stream, items to answer, malformed items among them)."""
    items = draw(st.lists(st.one_of(well_formed_bytes().map(lambda b: (b, False)),
                                    malformed_line().map(lambda s: (s.encode("utf-8"), True))), max_size=25))
    data = b"".join(b for b, _ in items)
    answered, odd = len(items), sum(bad for _, bad in items)
    if draw(st.booleans()):
        data += "ver:3.0 eventname:PROCESS_LOG_STDOUT len:100\nprocessname:init channel:stdout\n镜像 ··".encode()
        answered += 1
    return data, answered, odd


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=stream_bytes())
def test_listener_survives_any_byte_counted_stream_and_answers_every_item(
    case: tuple[bytes, int, int], settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """Under bytes framing too: exit 0 at EOF, one OK per item, stdout only protocol tokens, and at
    most one stderr line per malformed item."""
    data, answered, odd = case
    stderr_log.reset()
    out = io.StringIO()
    channel = EventChannel(io.BytesIO(data), out, len_unit="bytes")
    code = listen(dataclasses.replace(settings, supervisor_len_unit="bytes"), rulebook, channel, env={})
    assert code == 0
    assert out.getvalue() == READY + (OK + READY) * answered
    assert channel.resyncs == 0  # in-memory input is never short but at its end
    events = stderr_log.events()
    assert len([e for e in events if e["event"] == "protocol_error"]) == odd  # one line each, no more
    assert not [e for e in events if e["event"] in ("event_handling_failed", "startup_check_failed")], events[-3:]


@pytest.mark.parametrize("value", ["²", "①", "١٢", "-3", "3.0", "٣"])
def test_header_len_in_unicode_digits_is_a_protocol_error(value: str) -> None:
    """``str.isdigit`` accepts '²' which ``int`` refuses: only ASCII digits are a length."""
    with pytest.raises(proto.ProtocolError):
        proto.parse_header(f"ver:3.0 eventname:TICK_5 len:{value}")


# ------------------------------------------------------------------ a real process on real pipes

_DRIVER = textwrap.dedent("""\
    import os, subprocess, sys
    from watchdog.app import listen
    from watchdog.config import load_settings, rule_paths
    from watchdog.diagnosis.rules import load_rule_files
    from watchdog.sinks import alerts
    from watchdog.sources.supervisor_events import EventChannel

    alerts.configure()
    settings = load_settings(sys.argv[1])
    rules = load_rule_files(rule_paths(settings))
    channel = EventChannel.take_stdio()
    # Everything below writes to fd 1 or sys.stdout, as careless code and libraries do.
    print("stray print from python")
    sys.stdout.write("stray sys.stdout write\\n")
    os.write(1, b"stray write to fd 1\\n")
    subprocess.run(["echo", "stray output of a child process"], check=True)
    sys.exit(listen(settings, rules, channel, env={}))
    """)


def _config(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs" / "k3s.log").write_text("k3s starting\nlisten tcp :6443: bind: address already in use\n")
    conf = tmp_path / "watchdog.toml"
    conf.write_text(f'status_file = "{tmp_path}/status/diagnosis.json"\nlog_dir = "{tmp_path}/logs"\n')
    return conf


def _bytes_stream() -> tuple[bytes, int]:
    chinese = "processname:init groupname:init pid:7 channel:stdout\n导入镜像失败：no space left on device\n完成"
    parts = [
        frame("TICK_5", "when:1").encode(),
        # Header and payload with undecodable bytes: each invalid byte decodes to one U+FFFD.
        b"ver:3.0 x:\xff\xfe eventname:TICK_5 len:2\n",  # an odd field: still well-formed
        b"ok",
        b"\xc3\x28 garbage \x80 line\n",  # not a header at all
        b"ver:3.0 eventname:PROCESS_LOG_STDOUT len:" + str(len("processname:init channel:stdout\nA\xff".encode(
            "latin-1").decode("utf-8", "replace"))).encode() + b"\nprocessname:init channel:stdout\nA\xff",
        frame("PROCESS_LOG_STDOUT", chinese, 4).encode("utf-8"),  # len counts characters, not bytes
        state_frame("FATAL", "k3s", from_state="BACKOFF", serial=5).encode(),
        frame("PROCESS_STATE_RUNNING", "processname:console groupname:console from_state:STARTING pid:12", 6).encode(),
    ]
    return b"".join(parts), 7


@pytest.mark.integration
def test_real_listener_process_keeps_stdout_clean_even_when_code_prints(tmp_path: Path) -> None:
    """fd 1 points at stderr once the channel is taken: prints, fd writes, children land on stderr."""
    data, answered = _bytes_stream()
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    proc = subprocess.run([sys.executable, str(driver), str(_config(tmp_path))], input=data, capture_output=True,
                          timeout=60, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert proc.stdout.decode() == READY + (OK + READY) * answered
    err = proc.stderr.decode(errors="replace")
    for stray in ("stray print", "stray sys.stdout", "stray write to fd 1", "stray output of a child"):
        assert stray in err


@pytest.mark.integration
def test_python_m_watchdog_listen_reads_chinese_payload_by_characters(tmp_path: Path) -> None:
    """The shipped command: invalid UTF-8 and a Chinese PROCESS_LOG keep the stream in step."""
    data, answered = _bytes_stream()
    env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_SERVER_URL"}
    proc = subprocess.run([sys.executable, "-m", "watchdog", "listen", "--config", str(_config(tmp_path))],
                          input=data, capture_output=True, timeout=60, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert proc.stdout.decode() == READY + (OK + READY) * answered
    doc = json.loads((tmp_path / "status" / "diagnosis.json").read_text())
    # The Chinese line was matched as one line, and the FATAL event after it was parsed as one.
    seen = {(p["id"], p["subject"]) for p in doc["problems"] + doc["resolved"]}
    assert ("host.disk-full", "init") in seen
    assert any(subject == "k3s" and pid.startswith("k3s.") for pid, subject in seen)
    assert doc["components"]["k3s"]["state"] == "FATAL"
    assert doc["components"]["console"]["state"] == "RUNNING"
