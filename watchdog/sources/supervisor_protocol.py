"""The supervisord eventlistener protocol, as pure functions (no I/O).

supervisord writes a header line ``ver:3.0 server:supervisor serial:N pool:NAME poolserial:N
eventname:NAME len:N`` then ``len`` characters of payload. supervisord 4 on Python 3 computes
``len`` over the payload *string*, so it counts characters, not bytes (Supervisor/supervisor#1243).
"""
from __future__ import annotations

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
    for i, token in enumerate(line.split()):
        key, sep, value = token.partition(":")
        if not sep or not key:
            # Not quoted: a desynchronised stream feeds log lines here, and they may hold secrets.
            raise ProtocolError(f"token {i + 1} of the header line ({len(token)} characters) is not key:value")
        out[key] = value
    return out


def parse_header(line: str) -> dict[str, str]:
    """Parse a header line; it must carry ``eventname`` and a sane ``len``."""
    headers = parse_tokens(line.strip())
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


def process_state_change(envelope: Envelope) -> ProcessStateChange | None:
    """Decode a ``PROCESS_STATE_*`` event; ``None`` for other events or unusable payloads."""
    name = envelope.eventname
    if not name.startswith("PROCESS_STATE_"):
        return None
    tokens, _ = split_payload(envelope.payload)
    if "processname" not in tokens:
        return None
    pid = tokens.get("pid", "")
    tries = tokens.get("tries", "")
    expected = tokens.get("expected")
    return ProcessStateChange(
        name=tokens["processname"],
        group=tokens.get("groupname", ""),
        from_state=tokens.get("from_state", ""),
        to_state=name[len("PROCESS_STATE_"):],
        pid=int(pid) if pid.isascii() and pid.isdigit() else None,
        expected=None if expected is None else expected == "1",
        tries=int(tries) if tries.isascii() and tries.isdigit() else None,
    )


def log_lines(envelope: Envelope) -> tuple[str, list[str]] | None:
    """Decode a ``PROCESS_LOG_*`` event into (process name, lines)."""
    if not envelope.eventname.startswith("PROCESS_LOG"):
        return None
    tokens, data = split_payload(envelope.payload)
    return tokens.get("processname", ""), data.splitlines()
