"""`status --watch`: the status again whenever the file changes, until Ctrl-C (exit status as status)."""
from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import Reaper, reaped, wait_for
from watchdog import watching
from watchdog.model import HostView, Overall, ProcessView, RegionView
from watchdog.sinks.status_file import Snapshot, dumps, render, write_atomic

REPO = Path(__file__).resolve().parents[1]
BOOT = time.time()
"""When the (imaginary) listener and k3s started: a rewrite changes only ``generated_at``."""


def write_status(path: Path, overall: Overall, phase: str = "k3s", at: float | None = None) -> None:
    """Atomically, as the listener does: a reader never sees a partial file."""
    t = time.time() if at is None else at
    state = "FATAL" if overall == Overall.FAILED else "RUNNING"
    snap = Snapshot(t, "0.1.0", 1, BOOT, overall, phase, {"k3s": ProcessView(state, BOOT)}, RegionView(), HostView(),
                    {}, (), ())
    write_atomic(str(path), dumps(render(snap)))


class Steps:
    """A sleep that runs one action per call, then interrupts (as Ctrl-C would)."""

    def __init__(self, *actions: object) -> None:
        self.actions = list(actions)

    def __call__(self, seconds: float) -> None:
        if not self.actions:
            raise KeyboardInterrupt
        action = self.actions.pop(0)
        if callable(action):
            action()


def run_watch(path: Path, terminal: bool, *actions: object) -> tuple[int, str]:
    out = io.StringIO()
    code = watching.watch(str(path), lambda now: watching.look(str(path), now, 180.0, ("en",)), out, terminal,
                          interval=0.01, sleep=Steps(*actions))
    return code, out.getvalue()


def test_without_a_terminal_each_change_is_printed_once(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    write_status(path, Overall.STARTING)
    code, out = run_watch(
        path, False,
        None,  # nothing changed: nothing printed
        lambda: write_status(path, Overall.STARTING),  # a heartbeat: only generated_at differs
        lambda: write_status(path, Overall.FAILED),
        None,
    )
    assert out.count("Overall:") == 2
    assert out.index("Overall: starting") < out.index("Overall: failed")
    assert watching.CLEAR not in out
    assert code == 1  # as `status` for the last status seen


def test_on_a_terminal_the_screen_is_redrawn(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    write_status(path, Overall.STARTING)
    code, out = run_watch(path, True, lambda: write_status(path, Overall.HEALTHY, "ready"))
    frames = out.split(watching.CLEAR)[1:]
    assert len(frames) == 2
    assert "Overall: starting" in frames[0] and "Overall: healthy" in frames[1]
    assert "Ctrl-C" in frames[1]
    assert code == 0


def test_a_missing_file_is_said_and_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    code, out = run_watch(path, False, None, lambda: write_status(path, Overall.HEALTHY, "ready"))
    first, second = out.split("Overall:", 1)
    assert "no status file at" in first
    assert second.startswith(" healthy")
    assert code == 0


def test_a_status_going_stale_is_seen_without_a_file_change(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    write_status(path, Overall.HEALTHY, "ready")
    clock = [time.time()]
    out = io.StringIO()
    steps = Steps(lambda: clock.__setitem__(0, clock[0] + 3), lambda: clock.__setitem__(0, clock[0] + 300))
    code = watching.watch(str(path), lambda now: watching.look(str(path), now, 180.0, ("en",)), out, False,
                          interval=0.01, clock=lambda: clock[0], sleep=steps)
    assert "Overall: healthy" in out.getvalue() and "is stale" in out.getvalue()
    assert code == 2


# ----------------------------------------------------------------------------- the real command


class Collector:
    """Everything a process writes to a file descriptor, read in a thread (bounded waits only)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(self.fd, 65536)
            except OSError:  # a pty's master reads EIO once the child has gone
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


def spawn_watch(reaper: Reaper, tmp_path: Path, stdout: int) -> subprocess.Popen[bytes]:
    conf = tmp_path / "w.toml"
    conf.write_text(f'status_file = "{tmp_path / "d.json"}"\nlanguage = "en"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return reaper.spawn([sys.executable, "-m", "watchdog", "status", "--watch", "--interval", "0.1",
                         "--config", str(conf)], stdout=stdout, stderr=subprocess.PIPE, env=env, cwd=str(REPO))


@pytest.mark.integration
def test_real_watch_through_a_pipe_prints_each_rewrite_and_exits_as_status_on_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    write_status(path, Overall.STARTING)
    with reaped() as reaper:
        proc = spawn_watch(reaper, tmp_path, subprocess.PIPE)
        assert proc.stdout is not None
        out = Collector(proc.stdout.fileno())
        wait_for(lambda: "Overall: starting" in out.text, 20, what="the first status")
        write_status(path, Overall.STARTING)  # a heartbeat rewrite
        write_status(path, Overall.FAILED)
        wait_for(lambda: "Overall: failed" in out.text, 20, what="the rewritten status")
        time.sleep(0.5)  # several looks at an unchanged file
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 1
        out.thread.join(5)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert out.text.count("Overall:") == 2, out.text
    assert "\033" not in out.text
    assert "Traceback" not in stderr


@pytest.mark.integration
def test_real_watch_on_a_terminal_redraws_until_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    write_status(path, Overall.STARTING, "images")
    master, slave = os.openpty()
    try:
        with reaped() as reaper:
            proc = spawn_watch(reaper, tmp_path, slave)
            out = Collector(master)
            wait_for(lambda: "Phase: images" in out.text, 20, what="the first drawing")
            write_status(path, Overall.HEALTHY, "ready")
            wait_for(lambda: "Phase: ready" in out.text, 20, what="the redrawing")
            os.kill(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=20) == 0
    finally:
        os.close(slave)
        os.close(master)
    assert out.text.count(watching.CLEAR) >= 2
    assert out.text.rindex(watching.CLEAR) < out.text.index("Phase: ready")
