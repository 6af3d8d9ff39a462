"""The k3s API misbehaving never slows the event path: events are answered in milliseconds while
the API hangs, drips, refuses the token, fails, answers garbage, closes, or presents another CA.

One real listener process (``python -m watchdog listen``) driven over pipes as supervisord does,
against the HTTPS stand-in; each fault is diagnosed (the status file says why the API is
unreachable) and then cleared (the API is ``ok`` again), and every round trip is measured.
"""
from __future__ import annotations

import json
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.listener import Listener, frame, listener_env, state_frame, watchdog_argv
from tests.kube_api import objects
from tests.kube_api.server import KubeApi, kubeconfig_text, make_pki

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_ROUND_TRIP = 0.25
"""Seconds; the real figure is well under 5 ms (see ``make bench``): this bound only leaves room
for a loaded 2-CPU CI machine. A poll on the event path would take the 1 s API timeout or more."""


@contextmanager
def drip_server(api: KubeApi) -> Iterator[str]:
    """TLS with the stand-in's certificate, then an HTTP answer one byte every 0.3 s (slowloris)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(api.directory / "server.crt", api.directory / "server.key")
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(5)
                tls.recv(65536)
                for byte in b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"kind":"PodList"' + b" " * 4000:
                    if stop.wait(0.3):
                        return
                    tls.sendall(bytes([byte]))
        except OSError:
            pass

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        srv.close()


class Driver:
    """Feeds the listener a steady mix of ticks and log events and keeps every round trip."""

    def __init__(self, listener: Listener, status: Path) -> None:
        self.listener = listener
        self.status = status
        self.serial = 10
        self.times: list[float] = []

    def send(self, data: bytes) -> None:
        self.times.append(self.listener.send(data))

    def doc(self) -> dict[str, Any]:
        try:
            d: dict[str, Any] = json.loads(self.status.read_text())
            return d
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """Keep events flowing (a tick every 50 ms) until the status file satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            self.serial += 2
            self.send(frame("TICK_5", f"when:{int(time.time())}", self.serial))
            self.send(frame("PROCESS_LOG_STDOUT", "processname:init groupname:init pid:7 channel:stdout\nwaiting",
                            self.serial + 1))
            doc = self.doc()
            if doc and predicate(doc):
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; last api "
                                     f"{doc.get('components', {}).get('region', {}).get('api')!r}")
            threading.Event().wait(0.05)


def _api(doc: dict[str, Any]) -> str:
    return str(doc.get("components", {}).get("region", {}).get("api"))


def _unreachable(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in doc.get("problems", []) if p["id"] == "region.api-unreachable"]


@contextmanager
def listening(tmp_path: Path) -> Iterator[tuple[KubeApi, Driver]]:
    """The stand-in (healthy) and a real listener whose region poll is every 0.3 s, API ``ok`` at start."""
    with KubeApi(objects.scenario("healthy", time.time()), tmp_path / "api") as api:
        (tmp_path / "logs").mkdir()
        config = tmp_path / "watchdog.toml"
        config.write_text(
            f'status_file = "{tmp_path}/status/diagnosis.json"\nlog_dir = "{tmp_path}/logs"\n'
            f'\n[host]\npaths = ["{tmp_path}"]\n'
            f'\n[kubernetes]\nkubeconfig = "{api.kubeconfig}"\npoll_seconds = 0.3\ntimeout_seconds = 1.0\n'
            f'api_grace_seconds = 0.0\n'
        )
        with open(tmp_path / "listener.stderr", "wb") as stderr, \
                Listener(watchdog_argv(config), listener_env(), stderr=stderr) as listener:
            drive = Driver(listener, tmp_path / "status" / "diagnosis.json")
            drive.send(state_frame("RUNNING", "containerd", "STARTING", 1, pid=10))
            drive.send(state_frame("RUNNING", "k3s", "STARTING", 2, pid=11))
            drive.until(lambda d: _api(d) == "ok", 30, what="the API ok")
            yield api, drive


def assert_fast(times: list[float], baseline: list[float]) -> None:
    assert len(times) > 50
    assert max(times) < MAX_ROUND_TRIP, f"slowest round trip {max(times) * 1e3:.1f} ms"
    assert statistics.median(times) < 0.02, f"median round trip {statistics.median(times) * 1e3:.1f} ms"
    assert statistics.median(times) < 5 * max(statistics.median(baseline), 0.002)


def test_api_faults_are_diagnosed_and_never_slow_the_event_path(tmp_path: Path) -> None:
    """hang, 500, garbage, closed connection, 401, another CA; then a slow drip: events stay fast."""
    with listening(tmp_path) as (api, drive):
        baseline = list(drive.times)
        faults: list[tuple[str, Callable[[], object], Callable[[], object], str]] = [
            ("hang", lambda: api.set_fault("hang"), lambda: api.set_fault(None), "timeout"),
            ("500", lambda: api.set_fault("500"), lambda: api.set_fault(None), "server error"),
            ("garbage", lambda: api.set_fault("garbage"), lambda: api.set_fault(None), "not json"),
            ("close", lambda: api.set_fault("close"), lambda: api.set_fault(None), "connection closed"),
            ("401", lambda: api.set_fault("wrong-token"), lambda: api.set_fault(None), "credentials"),
            ("tls", lambda: api.write_kubeconfig(ca_pem=make_pki("another-ca").ca_pem),
             lambda: api.write_kubeconfig(), "tls"),
        ]
        for name, break_it, repair, reason in faults:
            break_it()
            doc = drive.until(lambda d: _api(d) != "ok" and bool(_unreachable(d)), 30, what=f"{name} diagnosed")
            assert reason in _api(doc), (name, _api(doc))
            repair()
            drive.until(lambda d: _api(d) == "ok" and not _unreachable(d), 30, what=f"recovery from {name}")
        with drip_server(api) as url:
            api.kubeconfig.write_text(kubeconfig_text(url, api.pki.ca_pem, api.token))
            end = time.monotonic() + 3.0
            drive.until(lambda d: time.monotonic() > end, 30, what="3 s of slow drip")
    assert_fast(drive.times, baseline)


def test_slow_drip_api_is_diagnosed_within_the_poll_deadline(tmp_path: Path) -> None:
    """A server that never finishes its answer (each read within the 1 s timeout) is an unreachable
    API, not a healthy one: the poll has an overall deadline, not only per-read timeouts."""
    with listening(tmp_path) as (api, drive), drip_server(api) as url:
        api.kubeconfig.write_text(kubeconfig_text(url, api.pki.ca_pem, api.token))
        doc = drive.until(lambda d: _api(d) != "ok" and bool(_unreachable(d)), 8, what="drip diagnosed")
        assert "timeout" in _api(doc)
