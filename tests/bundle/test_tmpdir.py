"""The one file unpacks itself into $TMPDIR at every start: a bad temporary folder, concurrent
starts, and what a SIGKILL leaves behind. Real tmpfs mounts over the empty root's /tmp."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.bundle.emptyroot import EmptyRoot, clean_env, entries
from tests.helpers import frame, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.integration]


@contextmanager
def tmpfs(root: EmptyRoot, options: str) -> Iterator[Path]:
    """A fresh tmpfs over the root's /tmp (mode 1777), unmounted at the end."""
    target = root.inside("/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=1777,{options}", "tmpfs", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def unpacked(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(("staticx-", "_MEI")))


def age(tmp: Path, seconds: float = 3600) -> None:
    """Make every unpacked folder look ``seconds`` old (the cleaner spares young ones)."""
    then = time.time() - seconds
    for name in unpacked(tmp):
        os.utime(tmp / name, (then, then))


def test_a_read_only_temporary_folder_is_named_in_one_line(onefile_root: EmptyRoot) -> None:
    with tmpfs(onefile_root, "ro,size=64m"):
        got = onefile_root.run("rules")
    assert got.returncode != 0 and got.stdout == ""
    assert got.stderr.count("\n") == 1 and "in /tmp: Read-only file system" in got.stderr


def test_a_noexec_temporary_folder_fails_in_one_line_and_leaves_nothing(onefile_root: EmptyRoot) -> None:
    with tmpfs(onefile_root, "noexec,size=200m") as tmp:
        got = onefile_root.run("rules")
        left = unpacked(tmp)
    assert got.returncode != 0 and got.stdout == ""
    assert got.stderr.count("\n") == 1 and "/tmp/staticx-" in got.stderr and "Permission denied" in got.stderr
    assert left == []


@pytest.mark.xfail(strict=True, reason="the loaders (staticx's, then PyInstaller's) fail before any Python runs "
                   "and print their own sentences, which do not name TMPDIR; the image uses the folder build, "
                   "which unpacks nothing (README: Baking it into the image)")
def test_the_loader_sentence_names_the_variable_that_moves_the_folder(onefile_root: EmptyRoot) -> None:
    with tmpfs(onefile_root, "ro,size=64m"):
        got = onefile_root.run("rules")
    assert "TMPDIR" in got.stderr


def test_a_full_temporary_folder_fails_and_the_next_start_cleans_up(onefile_root: EmptyRoot) -> None:
    """Too small to unpack: the start fails; once there is room, a later start removes the leftover."""
    with tmpfs(onefile_root, "size=8m") as tmp:
        got = onefile_root.run("rules")
        assert got.returncode != 0 and got.stdout == "" and "Traceback" not in got.stderr
        left = unpacked(tmp)
        subprocess.run(["mount", "-o", "remount,size=256m", str(tmp)], check=True)
        age(tmp)
        again = onefile_root.run("rules")
        after = unpacked(tmp)
    assert again.returncode == 0, again.stderr
    assert left and not set(left) & set(after), (left, after)
    assert after == []


def test_concurrent_starts_never_collide_and_leave_nothing(onefile_root: EmptyRoot) -> None:
    """A HEALTHCHECK while the listener (re)starts: eight `check`s at once beside a `listen`."""
    with tmpfs(onefile_root, "size=1g") as tmp:
        listener = subprocess.Popen(onefile_root.argv("listen"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=clean_env())
        checks = [subprocess.Popen(onefile_root.argv("check", "--file", "/app/status/none.json"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
                  for _ in range(8)]
        results = [(c.wait(timeout=120), c.stderr.read() if c.stderr else "") for c in checks]
        assert listener.stdin is not None and listener.stdout is not None
        out, err = listener.communicate(frame("TICK_5", "when:1", 1).encode(), timeout=120)
        left = unpacked(tmp)
    assert [code for code, _ in results] == [2] * 8
    assert all(text.count("\n") == 1 and "/app/status/none.json" in text for _, text in results)
    assert listener.returncode == 0 and out == b"READY\nRESULT 2\nOKREADY\n", err
    assert left == []


def test_after_sigkill_the_next_start_removes_the_leftovers_but_not_a_running_ones(onefile_root: EmptyRoot) -> None:
    with tmpfs(onefile_root, "size=1g") as tmp:
        killed = subprocess.Popen(onefile_root.argv("listen"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=clean_env(), start_new_session=True)
        assert killed.stdout is not None
        assert killed.stdout.read(6) == b"READY\n"
        os.killpg(killed.pid, signal.SIGKILL)  # the whole group: staticx's loader, PyInstaller's, Python
        killed.wait(timeout=30)
        wait_for(lambda: not _group_alive(killed.pid), 30, what="the killed group to end")
        leftovers = unpacked(tmp)
        assert len(leftovers) == 2, leftovers  # staticx-…, _MEI…: SIGKILL gives the loaders no chance
        age(tmp)
        running = subprocess.Popen(onefile_root.argv("listen"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, env=clean_env())
        assert running.stdout is not None and running.stdout.read(6) == b"READY\n"
        during = unpacked(tmp)
        age(tmp)  # the running listener's folders look old too: being in use keeps them
        check = onefile_root.run("check", "--file", "/app/status/none.json")
        still = unpacked(tmp)
        running.communicate(b"", timeout=60)
        after = unpacked(tmp)
    assert not set(leftovers) & set(during), (leftovers, during)
    assert len(during) == 2 and still == during, (during, still)
    assert check.returncode == 2
    assert after == []


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_nothing_but_the_status_is_left_in_the_root(onefile_root: EmptyRoot) -> None:
    got = onefile_root.run("listen", input=frame("TICK_5", "when:1", 1))
    assert got.returncode == 0
    assert [e for e in entries(onefile_root.path) if e.startswith("tmp/")] == []
