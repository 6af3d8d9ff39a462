"""Reading the end of a log in every state the field leaves it: bounded time and memory, honest notes.

The listener runs as root in the image, and root ignores file modes: "unreadable" is tested with
a FIFO, a socket, a directory and, for a real permission error, a child process that drops to
``nobody`` before reading.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from watchdog.model import LogTail
from watchdog.sources.logs import read_tail

MAX_BYTES = 65536
MAX_LINES = 200
TIME_LIMIT = 0.5
"""Seconds; a failure must be explained in milliseconds, this is a generous bound for a busy CI."""
MEMORY_LIMIT = 8 * MAX_BYTES
"""Peak Python allocations while reading a tail: a few times the tail, never the file."""


def measured(path: Path | str) -> tuple[LogTail, float, int]:
    """read_tail with its wall time and peak traced allocation."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        tail = read_tail(str(path), MAX_BYTES, MAX_LINES)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return tail, elapsed, peak


def assert_bounded(tail: LogTail, elapsed: float, peak: int) -> None:
    assert elapsed < TIME_LIMIT, f"read_tail took {elapsed:.3f} s"
    assert peak < MEMORY_LIMIT, f"read_tail allocated {peak} bytes at peak"
    assert len(tail.lines) <= MAX_LINES
    assert sum(len(line) for line in tail.lines) <= MAX_BYTES


def test_missing_log_gives_a_note(tmp_path: Path) -> None:
    """A log that does not exist yet: no lines, a note saying so."""
    tail, *_ = measured(tmp_path / "k3s.log")
    assert tail.lines == () and any("does not exist" in n for n in tail.notes)


def test_directory_instead_of_a_log_gives_a_note(tmp_path: Path) -> None:
    tail, *_ = measured(tmp_path)
    assert tail.lines == () and any("directory" in n for n in tail.notes)


def test_fifo_is_not_read_and_does_not_block(tmp_path: Path) -> None:
    """A FIFO with no writer would block a plain open(): it is refused at once."""
    fifo = tmp_path / "k3s.log"
    os.mkfifo(fifo)
    tail, elapsed, _ = measured(fifo)
    assert elapsed < TIME_LIMIT
    assert tail.lines == () and any("not a regular file" in n for n in tail.notes)


def test_socket_that_cannot_be_opened_gives_a_note(tmp_path: Path) -> None:
    path = tmp_path / "k3s.log"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        tail, *_ = measured(path)
    assert tail.lines == () and tail.notes


def test_permission_denied_for_an_unprivileged_reader(tmp_path: Path) -> None:
    """Root reads anything: a child that drops to nobody meets a real EACCES."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to nobody")  # as non-root, chmod 000 is enough: covered below
    log = tmp_path / "private.log"
    log.write_text("secret line\n")
    log.chmod(0o600)
    code = (
        "import json, os, sys\n"
        "from watchdog.sources.logs import read_tail\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"t = read_tail({str(log)!r}); print(json.dumps([t.lines, t.notes]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, check=True)
    lines, notes = json.loads(out.stdout)
    assert lines == [] and any("permission denied" in n for n in notes)


def test_chmod_000_as_root_is_still_read_honestly(tmp_path: Path) -> None:
    """Documented behaviour: root is not stopped by modes, so the lines are read."""
    log = tmp_path / "k3s.log"
    log.write_text("line one\n")
    log.chmod(0)
    tail, *_ = measured(log)
    if os.geteuid() == 0:
        assert tail.lines == ("line one",)
    else:
        assert tail.lines == () and any("permission denied" in n for n in tail.notes)


def test_binary_file_is_not_quoted(tmp_path: Path) -> None:
    log = tmp_path / "k3s.log"
    log.write_bytes(os.urandom(4096) + b"\0" * 4096 + b"\n")
    tail, *_ = measured(log)
    assert tail.lines == () and any("binary" in n for n in tail.notes)


def test_invalid_utf8_is_replaced_not_raised(tmp_path: Path) -> None:
    log = tmp_path / "k3s.log"
    log.write_bytes(b"ok line\nbad \xff\xfe bytes\n\xe4\xb8\xad\xe6\x96\x87\n")
    tail, *_ = measured(log)
    assert tail.lines == ("ok line", "bad \ufffd\ufffd bytes", "中文")


def test_rotated_between_two_reads_includes_the_rotated_end(tmp_path: Path) -> None:
    """supervisord renames k3s.log to k3s.log.1: the second read still shows the story."""
    log = tmp_path / "k3s.log"
    log.write_text("".join(f"old {i}\n" for i in range(50)))
    first, *_ = measured(log)
    assert first.lines[-1] == "old 49"
    os.rename(log, str(log) + ".1")
    log.write_text("new 0\nnew 1\n")
    second, *_ = measured(log)
    assert second.lines[-2:] == ("new 0", "new 1")
    assert "old 49" in second.lines
    assert any("rotated" in n for n in second.notes)


def test_truncated_while_being_read_never_raises(tmp_path: Path) -> None:
    """A writer truncating and refilling the log while tails are read: no exception, bounded."""
    log = tmp_path / "k3s.log"
    known = {f"line {i:06d} " + "x" * 80 for i in range(3000)}
    ordered = sorted(known)
    log.write_text("".join(line + "\n" for line in ordered))
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            with open(log, "r+b") as fh:
                fh.truncate(0)
                for i in range(0, len(ordered), 500):
                    fh.write("".join(line + "\n" for line in ordered[i:i + 500]).encode())
                    fh.flush()

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _ in range(300):
            tail = read_tail(str(log), MAX_BYTES, MAX_LINES)
            assert len(tail.lines) <= MAX_LINES
            # Whole lines only, except possibly the very last one being written right now.
            assert all(line in known for line in tail.lines[:-1]), tail.lines[:3]
    finally:
        stop.set()
        writer.join(timeout=30)


@pytest.mark.slow
def test_a_single_100_mb_line_without_newline_is_bounded(tmp_path: Path) -> None:
    """Only the end of the line is read, and the note says the line was cut."""
    log = tmp_path / "k3s.log"
    with open(log, "wb") as fh:
        block = b"y" * (1024 * 1024)
        for _ in range(100):
            fh.write(block)
        fh.write(b"END")
    tail, elapsed, peak = measured(log)
    assert_bounded(tail, elapsed, peak)
    assert len(tail.lines) == 1 and tail.lines[0].endswith("yyyEND")
    assert any("longer than" in n for n in tail.notes)


@pytest.mark.slow
def test_a_2_gb_sparse_log_is_read_from_its_end(tmp_path: Path) -> None:
    """2 GB of holes with real lines at the end: the tail is the end, in bounded time and memory."""
    log = tmp_path / "k3s.log"
    with open(log, "wb") as fh:
        fh.truncate(2 * 1024**3)
        fh.seek(0, os.SEEK_END)
        fh.write("".join(f"level=error msg=\"line {i}\"\n" for i in range(5000)).encode())
    assert log.stat().st_size > 2 * 1024**3
    tail, elapsed, peak = measured(log)
    assert_bounded(tail, elapsed, peak)
    assert tail.lines[-1] == 'level=error msg="line 4999"' and len(tail.lines) == MAX_LINES
    assert tail.notes == ()


@pytest.mark.slow
def test_a_2_gb_sparse_log_of_holes_only_is_called_binary(tmp_path: Path) -> None:
    """A log that ends in NUL bytes (a crash mid-write on some filesystems) is not quoted."""
    log = tmp_path / "k3s.log"
    with open(log, "wb") as fh:
        fh.truncate(2 * 1024**3)
    tail, elapsed, peak = measured(log)
    assert_bounded(tail, elapsed, peak)
    assert tail.lines == () and any("binary" in n for n in tail.notes)
