"""The console's HTTP probe: real sockets, bounded time; `console.unreachable` in the Monitor."""
from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from structlog.testing import capture_logs

from tests.helpers import state_frame, tick_frame
from tests.test_app import Clock, feed, status
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import HostSample, ProbeResult
from watchdog.sources.console_probe import probe


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "/login")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def raw_server(reply: bytes | None) -> Iterator[int]:
    """Accepts connections; answers ``reply`` (not HTTP) or nothing at all."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            held.append(conn)
            if reply is not None:
                conn.sendall(reply)
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        for c in held:
            c.close()
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_any_http_answer_counts_like_the_init_scripts_curl() -> None:
    with http_server() as port:
        result = probe("127.0.0.1", port, "/", timeout=5)
    assert result.ok and result.status == 302


def test_refused_port_is_not_answering() -> None:
    result = probe("127.0.0.1", free_port(), "/", timeout=5)
    assert not result.ok and "refused" in result.detail


def test_silent_server_times_out_within_the_bound() -> None:
    """A port that accepts but never answers costs at most about the timeout."""
    with raw_server(None) as port:
        started = time.monotonic()
        result = probe("127.0.0.1", port, "/", timeout=0.5)
        took = time.monotonic() - started
    assert not result.ok and "0.5 s" in result.detail
    assert took < 3


def test_non_http_answer_is_not_answering() -> None:
    with raw_server(b"SSH-2.0-OpenSSH_9.6\r\n") as port:
        result = probe("127.0.0.1", port, "/", timeout=5)
    assert not result.ok and result.status is None


# ----------------------------------------------------------------------------- in the Monitor


class Prober:
    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.calls = 0

    def __call__(self) -> ProbeResult:
        self.calls += 1
        if self.ok:
            return ProbeResult(True, "http://127.0.0.1:7070/ answered HTTP 200", 200)
        return ProbeResult(False, "http://127.0.0.1:7070/: connection refused (nothing listens on port 7070)")


def running_everything(mon: Monitor) -> None:
    feed(
        mon,
        state_frame("RUNNING", "containerd", "STARTING", 1),
        state_frame("RUNNING", "k3s", "STARTING", 2),
        state_frame("RUNNING", "console", "STARTING", 3),
    )


def step(mon: Monitor, clock: Clock, seconds: float, serial: int) -> None:
    """A tick, the background work it started, and the tick that picks the result up."""
    clock.t += seconds
    feed(mon, tick_frame(int(clock.t), serial))
    assert mon.wait_background(10)
    feed(mon, tick_frame(int(clock.t), serial + 1))


def test_console_not_answering_past_the_grace_is_unreachable(settings: Settings, rulebook: RuleBook) -> None:
    """RUNNING but refused: nothing during the grace, `console.unreachable` after; resolved when it answers."""
    clock = Clock()
    prober = Prober(ok=False)
    mon = Monitor(settings, rulebook, clock=clock, console_prober=prober, host_sampler=HostSample)
    running_everything(mon)
    step(mon, clock, 5, 10)
    assert prober.calls >= 1
    assert ("console.unreachable", "console") not in mon.book.active
    assert status(settings)["phase"] == "console"  # RUNNING alone is not "answering"
    assert status(settings)["overall"] == "starting"
    step(mon, clock, settings.console.grace_seconds + settings.console.poll_seconds, 20)
    problem = mon.book.active[("console.unreachable", "console")]
    assert "connection refused" in problem.finding.summary.en
    assert any("refused" in e for e in problem.finding.evidence)
    prober.ok = True
    with capture_logs() as logs:
        step(mon, clock, settings.console.poll_seconds, 30)
    assert ("console.unreachable", "console") not in mon.book.active
    assert [e["id"] for e in logs if e["event"] == "problem_resolved"] == ["console.unreachable"]
    doc = status(settings)
    assert (doc["phase"], doc["overall"]) == ("ready", "healthy")
    assert doc["timeline"]["console"] is not None and doc["timeline"]["ready"] is not None


def test_probe_is_not_run_unless_the_console_is_running(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    prober = Prober(ok=True)
    mon = Monitor(settings, rulebook, clock=clock, console_prober=prober)
    feed(mon, state_frame("BACKOFF", "console", "STARTING", 1))
    step(mon, clock, 5, 2)
    assert prober.calls == 0


def test_probing_off_makes_running_enough(settings: Settings, rulebook: RuleBook) -> None:
    s = dataclasses.replace(settings, console=dataclasses.replace(settings.console, probe=False))
    clock = Clock()
    prober = Prober(ok=False)
    mon = Monitor(s, rulebook, clock=clock, console_prober=prober)
    running_everything(mon)
    step(mon, clock, 500, 10)
    assert prober.calls == 0 and status(s)["phase"] == "ready"


def test_slow_probe_never_holds_up_an_event(settings: Settings, rulebook: RuleBook) -> None:
    """The probe runs in a thread: handling a tick while it hangs returns at once."""
    release = threading.Event()

    def slow() -> ProbeResult:
        release.wait(30)
        return ProbeResult(True, "late", 200)

    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, console_prober=slow)
    running_everything(mon)
    try:
        started = time.monotonic()
        for i in range(20):
            clock.t += 5
            feed(mon, tick_frame(int(clock.t), 100 + i))
        assert time.monotonic() - started < 5
    finally:
        release.set()
        assert mon.wait_background(10)
