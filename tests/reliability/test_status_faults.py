"""The status file under faults: a writer killed mid-write, a full disk, a read-only folder.

A reader must never see a partial file; a failing write keeps the previous file, is said once on
stderr, and the file is written again as soon as it can be.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import reaped, wait_for
from tests.reliability.conftest import Captured
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.sinks.status_file import write_atomic

REPO = Path(__file__).resolve().parents[2]

_WRITER = textwrap.dedent("""\
    import hashlib, json, sys
    from watchdog.sinks.status_file import write_atomic
    path, seed = sys.argv[1], int(sys.argv[2])
    n = 0
    while True:
        n += 1
        body = "x" * ((seed * 7919 + n * 104729) % 300_000)  # 0..300 kB: writes span many pages
        doc = {"n": n, "body": body, "sha": hashlib.sha256(body.encode()).hexdigest()}
        write_atomic(path, json.dumps(doc))
    """)


@pytest.mark.slow
@pytest.mark.integration
def test_reader_never_sees_partial_json_while_writers_are_sigkilled(tmp_path: Path) -> None:
    """15 writers killed with SIGKILL at random moments; thousands of reads, all whole documents."""
    path = tmp_path / "status" / "diagnosis.json"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    rng = random.Random(6)  # noqa: S311 - kill moments for a test, not cryptography
    reads = 0
    with reaped() as reaper:
        for round_ in range(15):
            proc = reaper.spawn([sys.executable, str(script), str(path), str(round_)], cwd=str(REPO),
                                env={**os.environ, "PYTHONPATH": str(REPO)})
            wait_for(path.exists, 20, what="the first status write")
            deadline = time.monotonic() + rng.uniform(0.05, 0.3)
            while time.monotonic() < deadline:
                raw = path.read_bytes()
                doc = json.loads(raw)  # a partial file raises here
                assert hashlib.sha256(doc["body"].encode()).hexdigest() == doc["sha"]
                reads += 1
            proc.kill()
            proc.wait(timeout=10)
            doc = json.loads(path.read_bytes())  # what the killed writer left is whole
            assert hashlib.sha256(doc["body"].encode()).hexdigest() == doc["sha"]
    assert reads > 100
    leftovers = [p for p in path.parent.iterdir() if p.name != path.name]
    # A writer killed between mkstemp and rename leaves its temporary file behind (at most one per kill).
    assert len(leftovers) <= 15


# ------------------------------------------------------------------ full and read-only folders


@pytest.fixture(params=["tmpfs", "injected"])
def small_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | None]:
    """A 64 kB tmpfs when mounting is permitted (root in CI), else ``None``; ``injected`` is
    always ``None``: the real writer wrapped to raise the same errors, so both paths run."""
    if request.param == "injected":
        yield None
        return
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)],
                              capture_output=True, timeout=30)
        mounted = done.returncode == 0
    except FileNotFoundError:  # no mount(8) in this image
        mounted = False
    if not mounted:
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FaultyWriter:
    """The real atomic writer, failing with ``error`` while ``failing`` is set (no-mount fallback)."""

    def __init__(self, error: int) -> None:
        self.error = error
        self.failing = False

    def __call__(self, path: str, text: str) -> None:
        if self.failing:
            raise OSError(self.error, os.strerror(self.error))
        write_atomic(path, text)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _exercise(mon: Monitor, clock: Clock, status: Path, log: Captured, break_it: Callable[[], None],
              repair: Callable[[], None], expected: str) -> None:
    mon.publish([], clock(), force=True)
    before = status.read_bytes()
    assert json.loads(before)["schema"] == 1
    break_it()
    for _ in range(10):
        clock.t += 2.0  # past the retry interval each time
        mon.publish([], clock(), force=True)
        assert status.read_bytes() == before  # the previous file is kept, whole
    failed = log.named("status_write_failed")
    assert len(failed) == 1, failed  # said once, not once per retry
    assert expected in failed[0]["error"].lower()
    assert not [p for p in status.parent.iterdir() if p.name.endswith(".tmp")]
    repair()
    clock.t += 2.0
    mon.publish([], clock(), force=True)
    assert len(log.named("status_write_recovered")) == 1
    after = json.loads(status.read_bytes())
    assert after["generated_at"] != json.loads(before)["generated_at"]


def test_full_status_folder_keeps_previous_file_says_so_once_and_recovers(
    small_fs: Path | None, tmp_path: Path, settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """ENOSPC on a real 64 kB tmpfs (or an injected ENOSPC where mounting is not permitted)."""
    clock = Clock()
    if small_fs is not None:
        status = small_fs / "diagnosis.json"
        mon = Monitor(dataclasses.replace(settings, status_file=str(status)), rulebook, clock=clock)
        filler: list[Path] = []
        _exercise(mon, clock, status, stderr_log, lambda: filler.append(_fill(small_fs)),
                  lambda: filler[0].unlink(), "space")
    else:
        status = tmp_path / "status" / "diagnosis.json"
        writer = FaultyWriter(errno.ENOSPC)
        mon = Monitor(dataclasses.replace(settings, status_file=str(status)), rulebook, clock=clock, writer=writer)
        _exercise(mon, clock, status, stderr_log, lambda: setattr(writer, "failing", True),
                  lambda: setattr(writer, "failing", False), "space")


def test_read_only_status_folder_keeps_previous_file_says_so_once_and_recovers(
    small_fs: Path | None, tmp_path: Path, settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """EROFS from a tmpfs remounted read-only (or injected where mounting is not permitted)."""
    clock = Clock()
    if small_fs is not None:
        status = small_fs / "diagnosis.json"
        mon = Monitor(dataclasses.replace(settings, status_file=str(status)), rulebook, clock=clock)

        def remount(mode: str) -> None:
            subprocess.run(["mount", "-o", f"remount,{mode}", str(small_fs)], check=True, timeout=30)

        _exercise(mon, clock, status, stderr_log, lambda: remount("ro"), lambda: remount("rw"), "read-only")
    else:
        status = tmp_path / "status" / "diagnosis.json"
        writer = FaultyWriter(errno.EROFS)
        mon = Monitor(dataclasses.replace(settings, status_file=str(status)), rulebook, clock=clock, writer=writer)
        _exercise(mon, clock, status, stderr_log, lambda: setattr(writer, "failing", True),
                  lambda: setattr(writer, "failing", False), "read-only")
