"""The only code that touches the listener's stdin and stdout.

stdout is supervisord's protocol channel: anything but protocol tokens there makes supervisord
log a bad result and mark the listener UNKNOWN (Supervisor/supervisor#663). So this module
takes the channel for itself and points file descriptor 1 at stderr: a stray ``print`` or a
chatty library then lands in the container's log instead of corrupting the protocol.

stdin is read as bytes. A payload is ``len`` bytes (supervisord on Python 2) or ``len``
characters (supervisord 4 on Python 3) and is decoded as UTF-8 with replacement, so invalid
bytes never break the framing. supervisord sends nothing more until it has the answer, so a
payload that comes up short (nothing more within ``resync_seconds``) is handed over as it is,
answered, and counted in ``resyncs``; the lines that follow are skipped until a header parses.
"""
from __future__ import annotations

import codecs
import io
import os
import select
import sys
from typing import IO

from watchdog.model import Envelope
from watchdog.sources import supervisor_protocol as proto

RESYNC_SECONDS = 0.3
"""How long a payload read waits for more data: a pipe hands over a written envelope at once,
and the answer must leave well within a second."""
CHUNK = 65536
_UTF8 = codecs.getincrementaldecoder("utf-8")
_OK_READY = (proto.OK + proto.READY).encode("ascii")
MAX_HEADER_BYTES = 64 * 1024
"""A longer line is no header: it is skipped to its end (never held in memory) and refused."""


class _Input:
    """Buffered bytes from a file descriptor (waits bounded by ``poll``) or an in-memory stream."""

    def __init__(self, stream: IO[bytes] | IO[str]) -> None:
        self._stream = stream
        self._fd: int | None
        try:
            self._fd = stream.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            self._fd = None  # StringIO / BytesIO: everything is already there
        self._poll = select.poll() if self._fd is not None else None
        if self._poll is not None and self._fd is not None:
            self._poll.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._buf = bytearray()
        self._pos = 0
        self.eof = False

    def _fill(self, timeout: float | None) -> bool:
        """Append what arrives (within ``timeout`` seconds; ``None``: wait); False at EOF or timeout."""
        if self.eof:
            return False
        if self._fd is not None and self._poll is not None:
            if timeout is not None and not self._poll.poll(max(0, int(timeout * 1000))):
                return False
            chunk: bytes | str = os.read(self._fd, CHUNK)
        else:
            chunk = self._stream.read(CHUNK)
        data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        if not data:
            self.eof = True
            return False
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > CHUNK and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]  # consumed bytes go; a partial line stays
            self._pos = 0
        self._buf += data
        return True

    def readline(self) -> bytes:
        """One line with its newline; what is left at EOF; ``b""`` only at EOF.

        Raises ``ProtocolError`` (after consuming the whole line) for a line over MAX_HEADER_BYTES.
        """
        scanned = 0  # bytes after _pos known to hold no newline (_fill may move _pos)
        while True:
            i = self._buf.find(b"\n", self._pos + scanned)
            if i >= 0:
                line = bytes(self._buf[self._pos : i + 1])
                self._pos = i + 1
                return line
            scanned = len(self._buf) - self._pos
            if scanned > MAX_HEADER_BYTES:
                self._skip_line()
                raise proto.ProtocolError(f"a line longer than {MAX_HEADER_BYTES} bytes is not a header")
            if not self._fill(None):
                line = bytes(self._buf[self._pos :])
                self._pos = len(self._buf)
                return line

    def _skip_line(self) -> None:
        while True:
            i = self._buf.find(b"\n", self._pos)
            if i >= 0:
                self._pos = i + 1
                return
            self._pos = len(self._buf)
            if not self._fill(None):
                return

    def take(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes: what is buffered, else what arrives within ``timeout``; ``b""`` if none."""
        if self._pos >= len(self._buf) and not self._fill(timeout):
            return b""
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += len(out)
        return out

    def buffered(self, n: int) -> bytes | None:
        """Exactly ``n`` bytes when they are all buffered already (the usual case), else ``None``."""
        end = self._pos + n
        if end > len(self._buf):
            return None
        out = bytes(self._buf[self._pos : end])
        self._pos = end
        return out

    def unread(self, data: bytes) -> None:
        self._buf[self._pos : self._pos] = data

    def whole_read(self) -> bytes | None:
        """When nothing is buffered: one read from the file descriptor, handed over whole (the
        caller gives back what it does not use with ``unread``); ``None`` when something is
        buffered, at EOF, or without a file descriptor. ``b""``: EOF now."""
        if self._fd is None or self.eof or self._pos != len(self._buf):
            return None
        if self._pos:
            self._buf.clear()  # all of it consumed: what is given back starts afresh
            self._pos = 0
        data = os.read(self._fd, CHUNK)
        if not data:
            self.eof = True
        return data


class EventChannel:
    """READY / header / payload / RESULT over injected streams (tests pass StringIO or BytesIO).

    ``len_unit`` is set once at start (see ``supervisor_protocol.choose_len_unit``).
    """

    def __init__(
        self,
        stdin: IO[bytes] | IO[str],
        stdout: IO[str],
        len_unit: proto.LenUnit = "characters",
        resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        self._in = _Input(stdin)
        self._out = stdout
        self._out_fd: int | None
        try:
            self._out_fd = stdout.fileno()
            stdout.flush()
        except (OSError, ValueError, io.UnsupportedOperation):
            self._out_fd = None  # StringIO in tests: written through the stream
        self.len_unit: proto.LenUnit = len_unit
        self.resync_seconds = resync_seconds
        self.resyncs = 0
        """Payloads that came up short (answered at once; the next header was found again)."""
        self.last_short: tuple[int, int] | None = None
        """(``len``, units received) of the last short payload."""
        self._resyncing = False

    @classmethod
    def take_stdio(cls) -> EventChannel:
        """Own the process's stdin/stdout and protect fd 1 from everyone else."""
        stdin = os.fdopen(os.dup(0), "rb", buffering=0)
        stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", newline="\n")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return cls(stdin, stdout)

    def ready(self) -> None:
        self._send(proto.READY)

    def ok(self) -> None:
        self._send(proto.OK)

    def ok_and_ready(self) -> None:
        """The answer and the next READY in one write: supervisord (3.3.1 and 4) parses its buffer
        "til it is too short", so it acknowledges and marks the listener READY from one read.
        One write per event instead of two, for supervisord as much as for us."""
        if self._out_fd is None:
            self._send(proto.OK + proto.READY)
            return
        sent = os.write(self._out_fd, _OK_READY)  # 17 bytes, below PIPE_BUF: all of it, in practice
        if sent < len(_OK_READY):
            self._write_all(self._out_fd, _OK_READY[sent:])

    def read(self) -> Envelope | None:
        """The next event; ``None`` at end of input.

        Raises ``ProtocolError`` for a header that cannot be parsed (the payload is then
        unknown; the caller answers OK and carries on with the next line). Right after a short
        payload, lines that are no header are the rest of it: they are skipped, not refused.
        """
        if not self._resyncing:
            data = self._in.whole_read()
            if data is not None:
                envelope = self._whole(data)
                if envelope is not None or not data:
                    return envelope
                self._in.unread(data)  # anything unusual: read again below, line by line
        while True:
            raw = self._in.readline()
            if not raw:
                return None
            if self._resyncing:
                start = raw.rfind(b"ver:")
                try:
                    headers = proto.parse_header(raw[max(start, 0) :].decode("utf-8", "replace"))
                except proto.ProtocolError:
                    continue
                self._resyncing = False
            else:
                headers = proto.parse_header(raw.decode("utf-8", "replace"))
            n = int(headers["len"])  # checked by parse_header
            payload, got = self._read_bytes(n) if self.len_unit == "bytes" else self._read_chars(n)
            if got < n and not self._in.eof:
                self.resyncs += 1
                self.last_short = (n, got)
                self._resyncing = True
            return Envelope(headers=headers, payload=payload)

    def _whole(self, data: bytes) -> Envelope | None:
        """The usual case: one read holds exactly one envelope (supervisord writes each in one
        go and waits for our answer). ``None`` for anything else, to be read the long way."""
        end = data.find(b"\n")
        if end < 0:
            return None
        try:
            headers = proto.parse_header(data[:end].decode("utf-8", "replace"))  # len checked there
        except proto.ProtocolError:
            return None  # refused the long way, with the line consumed
        payload = data[end + 1 :]
        n = int(headers["len"])
        if len(payload) != n or (self.len_unit == "characters" and not payload.isascii()):
            return None
        return Envelope(headers, payload.decode("utf-8", "replace"))

    def _read_bytes(self, n: int) -> tuple[str, int]:
        whole = self._in.buffered(n)
        if whole is not None:
            return whole.decode("utf-8", "replace"), n
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = self._in.take(n - got, self.resync_seconds)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts).decode("utf-8", "replace"), got

    def _read_chars(self, n: int) -> tuple[str, int]:
        whole = self._in.buffered(n)
        if whole is not None:
            if whole.isascii():
                return whole.decode("ascii"), n
            self._in.unread(whole)
        decoder = _UTF8("replace")
        parts: list[str] = []
        got = 0
        while got < n:
            # Every character takes at least one byte: asking for n - got bytes cannot overshoot,
            # except where invalid bytes complete a pending sequence (pushed back below).
            chunk = self._in.take(n - got, self.resync_seconds)
            if not chunk:
                parts.append(decoder.decode(b"", final=True))
                text = "".join(parts)
                return text, len(text)
            text = decoder.decode(chunk)
            parts.append(text)
            got += len(text)
        text = "".join(parts)
        pending = decoder.getstate()[0]
        if got > n or pending:
            self._in.unread(text[n:].encode("utf-8") + pending)
            text = text[:n]
        return text, n

    def _send(self, token: str) -> None:
        if self._out_fd is None:
            self._out.write(token)
            self._out.flush()
            return
        self._write_all(self._out_fd, token.encode("ascii"))

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:  # tokens are shorter than PIPE_BUF: one write, but never assume it
            view = view[os.write(fd, view):]
