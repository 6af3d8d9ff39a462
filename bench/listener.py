"""Drive an eventlistener process over real pipes, the way supervisord does: one event at a time.

The driver writes a frame, then reads the ``RESULT 2\\nOK`` answer and the next ``READY``; the
round trip of that cycle is what supervisord waits for before it can send the next event.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

READY = b"READY\n"
OK = b"RESULT 2\nOK"
FLOOR_LISTENER = Path(__file__).with_name("floor_listener.py")
REPO = Path(__file__).resolve().parents[1]


def frame(eventname: str, payload: str, serial: int = 1) -> bytes:
    """A supervisord event; ``len`` counts characters (supervisord 4 on Python 3)."""
    header = (f"ver:3.0 server:supervisor serial:{serial} pool:watchdog poolserial:{serial} "
              f"eventname:{eventname} len:{len(payload)}\n")
    return (header + payload).encode("utf-8")


def state_frame(to_state: str, name: str, from_state: str, serial: int, **extra: object) -> bytes:
    tokens = [f"processname:{name}", f"groupname:{name}", f"from_state:{from_state}"]
    tokens += [f"{k}:{v}" for k, v in extra.items()]
    return frame(f"PROCESS_STATE_{to_state}", " ".join(tokens), serial)


class Listener:
    """One listener process; always ended by ``close`` (EOF, then terminate, then kill)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None, stderr: Any = subprocess.DEVNULL,
                 cpus: set[int] | None = None) -> None:
        """``cpus``: the CPUs the listener (and every thread it starts) may run on."""
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            bufsize=0, cwd=str(REPO), env=env, start_new_session=True,
            preexec_fn=None if cpus is None else (lambda: os.sched_setaffinity(0, cpus)),
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._expect(READY)
        self.first_ready = time.perf_counter() - self.started

    def _expect(self, token: bytes) -> None:
        got = b""
        while len(got) < len(token):
            chunk = os.read(self._out, len(token) - len(got))
            if not chunk:
                code = self.proc.wait(timeout=10)
                raise RuntimeError(f"listener closed stdout (exit status {code}); expected {token!r}, got {got!r}: "
                                   f"run it by hand to see its stderr")
            got += chunk
        if got != token:
            raise RuntimeError(f"protocol violation: expected {token!r}, got {got!r}")

    def send(self, data: bytes) -> float:
        """One full cycle: event out, OK and READY back. Returns seconds."""
        t0 = time.perf_counter()
        view = memoryview(data)
        while view:
            n = os.write(self._in, view)
            view = view[n:]
        self._expect(OK)
        self._expect(READY)
        return time.perf_counter() - t0

    def cpu_seconds(self) -> float:
        """CPU time of the listener so far, all threads, in nanoseconds precision (schedstat)."""
        total = 0
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        for task in task_dir.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
        return total / 1e9

    def peak_rss_kib(self) -> int:
        """VmHWM: the peak resident set size of the listener so far."""
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=10)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def floor_argv() -> list[str]:
    return [sys.executable, str(FLOOR_LISTENER)]


def watchdog_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "watchdog", "listen", "--config", str(config)]


def listener_env() -> dict[str, str]:
    """No supervisord here: the listener runs on events alone, as in a test feeding stdin."""
    env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_SERVER_URL"}
    env["PYTHONPATH"] = str(REPO)
    return env
