"""Reading the end of a log file, bounded, whatever state the file is in.

A failure must be explained in milliseconds even when the log is gigabytes: the tail is read by
seeking from the end, at most ``max_bytes`` and ``max_lines``. Missing, unreadable, directory,
binary, truncated or rotated files give an honest note instead of an exception.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import IO, BinaryIO, Iterator, Mapping

from watchdog.model import LogTail

BINARY_NUL_RATIO = 0.01
"""More NUL bytes than this share of the tail means a binary file, not a log."""


def read_tail(path: str, max_bytes: int = 65536, max_lines: int = 200) -> LogTail:
    """The last lines of ``path``; falls back to ``path.1`` (supervisord's rotation) when short."""
    lines, notes = _tail_one(path, max_bytes, max_lines)
    if len(lines) < max_lines and not notes and os.path.isfile(path + ".1"):
        # The log was rotated recently: the start of the story is in the previous file.
        older, older_notes = _tail_one(path + ".1", max_bytes, max_lines - len(lines))
        if older and not older_notes:
            lines = older + lines
            notes.append(f"included the end of the rotated file {path}.1")
    return LogTail(path=path, lines=tuple(lines[-max_lines:]), notes=tuple(notes))


def _tail_one(path: str, max_bytes: int, max_lines: int) -> tuple[list[str], list[str]]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return [], [f"log file {path} does not exist (yet)"]
    except IsADirectoryError:
        return [], [f"log path {path} is a directory, not a file"]
    except PermissionError:
        return [], [f"log file {path} is not readable (permission denied)"]
    except OSError as e:
        return [], [f"log file {path} cannot be opened: {os.strerror(e.errno or errno.EIO)}"]
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return [], [f"log path {path} is a directory, not a file"]
        if not stat.S_ISREG(st.st_mode):
            return [], [f"log path {path} is not a regular file"]
        size = st.st_size
        start = max(0, size - max_bytes)
        try:
            data = os.pread(fd, max_bytes, start)
        except OSError as e:
            if e.errno == errno.EISDIR:
                return [], [f"log path {path} is a directory, not a file"]
            return [], [f"log file {path} cannot be read: {os.strerror(e.errno or errno.EIO)}"]
    finally:
        os.close(fd)
    notes: list[str] = []
    if len(data) < min(size - start, max_bytes):
        notes.append(f"log file {path} shrank while being read (truncated or rotated)")
    nuls = data.count(b"\0")
    if data and nuls > len(data) * BINARY_NUL_RATIO:
        return [], [*notes, f"log file {path} looks binary ({nuls} NUL bytes in its last {len(data)} bytes); not quoted"]
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if start > 0 and lines:
        if len(lines) > 1:
            lines = lines[1:]  # the first line was cut by the seek
        else:
            notes.append(f"the last line of {path} is longer than {max_bytes} bytes; only its end is shown")
    return lines[-max_lines:], notes


# ----------------------------------------------------------------------------- whole files, streamed

BLOCK_BYTES = 4 * 1024 * 1024
"""Bytes read at a time by ``read_blocks``: large enough that the per-block cost vanishes."""
MAX_LINE_BYTES = 1024 * 1024
"""A "line" longer than this (a binary file, a runaway line) is cut into pieces of this size."""


class LogUnreadable(Exception):
    """A log that cannot be opened or read; the message is one sentence naming the file."""


def open_log(path: str) -> BinaryIO:
    """Open ``path`` for ``read_blocks``; a missing, unreadable or non-regular file raises ``LogUnreadable``."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError as e:
        raise LogUnreadable(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise LogUnreadable(f"{path}: is a directory, not a log file") from e
    except PermissionError as e:
        raise LogUnreadable(f"{path}: permission denied") from e
    except OSError as e:
        raise LogUnreadable(f"{path}: cannot be opened: {os.strerror(e.errno or errno.EIO)}") from e
    try:
        if stat.S_ISDIR(os.fstat(fh.fileno()).st_mode):
            raise LogUnreadable(f"{path}: is a directory, not a log file")
    except BaseException:
        fh.close()
        raise
    return fh


def read_blocks(
    stream: IO[bytes], block_bytes: int = BLOCK_BYTES, max_line_bytes: int = MAX_LINE_BYTES, name: str = "input"
) -> Iterator[bytes]:
    """The bytes of ``stream`` as blocks of whole lines joined by ``\\n`` (no trailing newline).

    Streams: memory stays bounded by ``block_bytes + max_line_bytes`` whatever the size of the
    input. Blocks are raw bytes, cut only at newlines, so a UTF-8 character is never split: the
    reader decodes just the lines it needs. A block of N newlines holds N + 1 lines. A read
    error raises ``LogUnreadable``.
    """
    carry = b""
    while True:
        try:
            data = stream.read(block_bytes)
        except OSError as e:
            raise LogUnreadable(f"{name}: cannot be read: {os.strerror(e.errno or errno.EIO)}") from e
        if not data:
            if carry:
                yield carry
            return
        cut = data.rfind(b"\n")
        if cut == -1:
            carry += data
            while len(carry) > max_line_bytes:
                yield carry[:max_line_bytes]
                carry = carry[max_line_bytes:]
            continue
        yield carry + data[:cut]
        carry = data[cut + 1 :]


def modified_times(paths: Mapping[str, str]) -> dict[str, float]:
    """``{key: mtime}`` of the regular files among ``paths`` (missing or unreadable ones left out)."""
    out: dict[str, float] = {}
    for key, path in paths.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out[key] = st.st_mtime
    return out
