"""The supervisord eventlistener protocol, as pure functions (no I/O).

supervisord writes a header line ``ver:3.0 server:supervisor serial:N pool:NAME poolserial:N
eventname:NAME len:N`` then ``len`` units of payload. supervisord 4 on Python 3 computes ``len``
over the payload *string*, so it counts characters (Supervisor/supervisor#1243); supervisord on
Python 2 (the image's Debian supervisor 3.3.1) passes the program's raw bytes, so it counts bytes.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Literal

from watchdog.model import Envelope, ProcessStateChange

READY = "READY\n"
OK = "RESULT 2\nOK"
FAIL = "RESULT 4\nFAIL"
MAX_PAYLOAD_CHARS = 64 * 1024 * 1024
"""A ``len`` above this is treated as a corrupt header rather than read into memory."""


class ProtocolError(ValueError):
    """A header or payload that does not follow the protocol."""


def parse_tokens(line: str) -> dict[str, str]:
    """Split ``key:value key:value`` tokens; values may themselves contain colons."""
    out: dict[str, str] = {}
    for token in line.split():
        key, sep, value = token.partition(":")
        if not sep or not key:
            # Not quoted: a desynchronised stream feeds log lines here, and they may hold secrets.
            i = line.split().index(token)
            raise ProtocolError(f"token {i + 1} of the header line ({len(token)} characters) is not key:value")
        out[key] = value
    return out


_HEADER = re.compile(
    r"ver:(?P<ver>\S*) server:(?P<server>\S*) serial:(?P<serial>\S*) pool:(?P<pool>\S*) "
    r"poolserial:(?P<poolserial>\S*) eventname:(?P<eventname>\S*) len:(?P<len>\S*)")
"""A header as supervisord writes it (its tokens, its order): read in one match, every event."""


def parse_header(line: str) -> dict[str, str]:
    """Parse a header line; it must carry ``eventname`` and a sane ``len``."""
    line = line.strip()
    m = _HEADER.fullmatch(line)
    headers = m.groupdict() if m is not None else parse_tokens(line)
    if "eventname" not in headers:
        raise ProtocolError("header without eventname")
    payload_length(headers)
    return headers


def payload_length(headers: dict[str, str]) -> int:
    raw = headers.get("len")
    if raw is None:
        raise ProtocolError("header without len")
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit accepts '²', which int() refuses
        raise ProtocolError(f"header len is not a number: {raw[:20]!r}")
    n = int(raw)
    if n > MAX_PAYLOAD_CHARS:
        raise ProtocolError(f"header len {n} is larger than {MAX_PAYLOAD_CHARS}")
    return n


def split_payload(payload: str) -> tuple[dict[str, str], str]:
    """Split a payload into its token line and the data after the first newline.

    ``PROCESS_LOG_*`` and ``PROCESS_COMMUNICATION_*`` payloads carry data after a newline;
    ``PROCESS_STATE_*`` payloads are a token line only.
    """
    first, _, data = payload.partition("\n")
    try:
        return parse_tokens(first), data
    except ProtocolError:
        return {}, payload


_PROCESS_NAME = re.compile(r"processname:(\S*)")


def process_name(payload: str) -> str | None:
    """The ``processname`` of a process event's payload, read without decoding the rest: the
    fast path for events of programs nobody watches. supervisord writes it first; a payload
    that does not start with it is parsed whole."""
    m = _PROCESS_NAME.match(payload)
    if m is not None:
        return m.group(1)
    tokens, _ = split_payload(payload)
    return tokens.get("processname")


_STATE_PAYLOAD = re.compile(
    r"processname:(\S+) groupname:(\S*) from_state:(\S*)(?: expected:([0-9]+))?(?: pid:([0-9]+))?(?: tries:([0-9]+))?")
"""A state payload as supervisord writes it (tokens in its order, ASCII numbers): read in one match."""


_new_change = tuple.__new__


def watched_state_change(eventname: str, payload: str, watched: Container[str]) -> ProcessStateChange | None:
    """The event path's decoder: ``None`` at once when the program is not in ``watched`` (or the
    payload is unusable). supervisord's own token order is read with one regular expression;
    anything else goes through ``process_state_change``, with the same result."""
    m = _STATE_PAYLOAD.fullmatch(payload)
    if m is None:
        change = process_state_change(Envelope({"eventname": eventname}, payload))
        return change if change is not None and change.name in watched else None
    program, group, from_state, expected, pid, tries = m.groups()
    if program not in watched:
        return None
    return _new_change(ProcessStateChange, (  # ProcessStateChange(...) without its __new__ written in Python
        program, group, from_state, eventname[14:],  # len("PROCESS_STATE_")
        None if pid is None else int(pid),
        None if expected is None else expected == "1",
        None if tries is None else int(tries),
    ))


def process_state_change(envelope: Envelope) -> ProcessStateChange | None:
    """Decode a ``PROCESS_STATE_*`` event; ``None`` for other events or unusable payloads."""
    name = envelope.headers.get("eventname", "")
    if not name.startswith("PROCESS_STATE_"):
        return None
    payload = envelope.payload
    if "\n" in payload:
        tokens, _ = split_payload(payload)
    else:  # a state payload is one token line
        try:
            tokens = parse_tokens(payload)
        except ProtocolError:
            return None
    get = tokens.get
    program = get("processname")
    if program is None:
        return None
    pid = get("pid", "")
    tries = get("tries", "")
    expected = get("expected")
    return ProcessStateChange(
        program,
        get("groupname", ""),
        get("from_state", ""),
        name[14:],  # len("PROCESS_STATE_")
        int(pid) if pid.isascii() and pid.isdigit() else None,
        None if expected is None else expected == "1",
        int(tries) if tries.isascii() and tries.isdigit() else None,
    )


def log_lines(envelope: Envelope) -> tuple[str, list[str]] | None:
    """Decode a ``PROCESS_LOG_*`` event into (process name, lines)."""
    if not envelope.eventname.startswith("PROCESS_LOG"):
        return None
    tokens, data = split_payload(envelope.payload)
    return tokens.get("processname", ""), data.splitlines()


# ------------------------------------------------------------------ which unit `len` counts in

LenUnit = Literal["bytes", "characters"]
LEN_UNIT_SETTINGS = ("auto", "bytes", "characters")
"""Values of the ``supervisor_len_unit`` setting."""

_PYTHON = re.compile(r"^(?:python|pypy)(\d)?(?:\.\d+)*$")


@dataclass(frozen=True)
class LenUnitChoice:
    """The unit the channel reads ``len`` in, and why (for the one start-up log line)."""

    unit: LenUnit
    reason: str


def python_major(path: str) -> int | None:
    """2 or 3 for an interpreter path such as ``/usr/bin/python2.7``; ``None`` when it does not say."""
    m = _PYTHON.match(os.path.basename(path))
    if m is None:
        return None
    if m.group(1):
        return int(m.group(1))
    return 2 if os.path.basename(path) == "pypy" else None


def supervisor_major(version: str) -> int | None:
    """The major number of ``supervisor.getSupervisorVersion()`` (``"3.3.1"`` → 3)."""
    head = version.strip().split(".")[0]
    return int(head) if head.isascii() and head.isdigit() else None


def choose_len_unit(
    configured: str,
    *,
    under_supervisord: bool,
    parent_exe: str = "",
    parent_argv: Sequence[str] = (),
    ask_version: Callable[[], str | None] = lambda: None,
) -> LenUnitChoice:
    """Decide once at start; ``ask_version`` (XML-RPC) is only called when the interpreter does not tell.

    The listener's parent is supervisord. Its interpreter decides: Python 2 counts bytes, Python 3
    characters. When the interpreter cannot be read, supervisor < 4 (which only runs on Python 2)
    means bytes. Otherwise characters: a byte-counted payload then only comes up short and is
    resynchronised, never waited on.
    """
    if configured in ("bytes", "characters"):
        return LenUnitChoice("bytes" if configured == "bytes" else "characters", "set in the config")
    if not under_supervisord:
        return LenUnitChoice("characters", "not started by supervisord (SUPERVISOR_ENABLED unset)")
    if any("supervisor" in arg for arg in parent_argv):
        for path in (parent_exe, parent_argv[0] if parent_argv else ""):
            major = python_major(path) if path else None
            if major == 2:
                return LenUnitChoice("bytes", f"supervisord runs on Python 2 ({path})")
            if major is not None:
                return LenUnitChoice("characters", f"supervisord runs on Python {major} ({path})")
    version = ask_version()
    major = supervisor_major(version) if version else None
    if major is not None and major < 4:
        return LenUnitChoice("bytes", f"supervisord {version} (supervisor 3 runs on Python 2 only)")
    if major is not None:
        return LenUnitChoice("characters", f"supervisord {version}, interpreter unknown: Python 3 assumed")
    return LenUnitChoice("characters", "neither supervisord's interpreter nor its version could be read")
