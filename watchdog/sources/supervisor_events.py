"""The only code that touches the listener's stdin and stdout.

stdout is supervisord's protocol channel: anything but protocol tokens there makes supervisord
log a bad result and mark the listener UNKNOWN (Supervisor/supervisor#663). So this module
takes the channel for itself and points file descriptor 1 at stderr: a stray ``print`` or a
chatty library then lands in the container's log instead of corrupting the protocol.
"""
from __future__ import annotations

import io
import os
import sys
from typing import IO

from watchdog.model import Envelope
from watchdog.sources import supervisor_protocol as proto


class EventChannel:
    """READY / header / payload / RESULT over two text streams (injected; tests pass StringIO)."""

    def __init__(self, stdin: IO[str], stdout: IO[str]) -> None:
        self._in = stdin
        self._out = stdout

    @classmethod
    def take_stdio(cls) -> EventChannel:
        """Own the process's stdin/stdout and protect fd 1 from everyone else."""
        # newline="\n": no newline translation, so `len` characters are exactly the payload.
        stdin = io.TextIOWrapper(
            os.fdopen(os.dup(0), "rb"), encoding="utf-8", errors="replace", newline="\n"
        )
        stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", newline="\n")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return cls(stdin, stdout)

    def ready(self) -> None:
        self._send(proto.READY)

    def ok(self) -> None:
        self._send(proto.OK)

    def read(self) -> Envelope | None:
        """The next event; ``None`` at end of input.

        Raises ``ProtocolError`` for a header that cannot be parsed (the payload is then
        unknown; the caller answers OK and carries on with the next line).
        """
        line = self._in.readline()
        if not line:
            return None
        headers = proto.parse_header(line)
        n = proto.payload_length(headers)
        parts: list[str] = []
        remaining = n
        while remaining > 0:
            chunk = self._in.read(remaining)
            if not chunk:
                break  # end of input inside a payload: hand over what came
            parts.append(chunk)
            remaining -= len(chunk)
        return Envelope(headers=headers, payload="".join(parts))

    def _send(self, token: str) -> None:
        self._out.write(token)
        self._out.flush()
