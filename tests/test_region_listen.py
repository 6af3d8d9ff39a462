"""The listener keeps answering supervisord within milliseconds while the k3s API misbehaves.

`listen()` runs in a thread over two pipes, as under supervisord: every fault mode of the API
stand-in must become `region.api-unreachable` within its timeout, and every event must still be
answered at once.
"""
from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import frame, state_frame
from tests.kube_api.harness import region_settings, running_api
from tests.kube_api.server import KubeApi, make_pki
from watchdog.app import Monitor, listen
from watchdog.diagnosis.rules import RuleBook
from watchdog.sources.supervisor_events import EventChannel

ANSWER_LIMIT = 0.5
"""Seconds within which every event must be answered (supervisord's buffer is small)."""


class Supervisord:
    """The supervisord side of the pipes: sends frames, reads READY / RESULT tokens."""

    def __init__(self) -> None:
        r_in, self.w_in = os.pipe()
        self.r_out, w_out = os.pipe()
        self.stdin = open(r_in, encoding="utf-8", newline="\n")
        self.stdout = open(w_out, "w", encoding="utf-8", newline="\n")
        self.buffer = b""
        self.serial = 0

    def expect(self, token: bytes, timeout: float) -> float:
        """Seconds until ``token`` arrived; fails after ``timeout``."""
        started = time.monotonic()
        while token not in self.buffer:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise AssertionError(f"no {token!r} within {timeout} s (got {self.buffer!r})")
            ready, _, _ = select.select([self.r_out], [], [], left)
            if ready:
                self.buffer += os.read(self.r_out, 4096)
        self.buffer = self.buffer[self.buffer.index(token) + len(token):]
        return time.monotonic() - started

    def send(self, raw: str) -> float:
        """Send one event after READY; the seconds until its RESULT."""
        self.expect(b"READY\n", 5)
        os.write(self.w_in, raw.encode())
        return self.expect(b"RESULT 2\nOK", 5)

    def tick(self) -> float:
        self.serial += 1
        return self.send(frame("TICK_5", f"when:{int(time.time())}", self.serial))

    def close(self) -> None:
        os.close(self.w_in)


@contextmanager
def listening(mon: Monitor) -> Iterator[Supervisord]:
    sup = Supervisord()
    channel = EventChannel(sup.stdin, sup.stdout)
    t = threading.Thread(target=listen, args=(mon.settings, mon.rules, channel),
                         kwargs={"env": {}, "monitor": mon}, daemon=True)
    t.start()
    try:
        yield sup
    finally:
        sup.close()
        t.join(10)
        assert not t.is_alive(), "the listener did not stop at end of input"
        for f in (sup.stdin, sup.stdout):
            f.close()
        os.close(sup.r_out)


def unreachable(mon: Monitor) -> bool:
    return ("region.api-unreachable", "k3s-api") in mon.book.active


def break_api(api: KubeApi, fault: str) -> None:
    if fault == "refused":
        api.stop()
    elif fault == "tls":
        api.write_kubeconfig(ca_pem=make_pki("not-the-k3s-ca").ca_pem)
    else:
        api.set_fault(fault)


@pytest.mark.parametrize("fault", ["hang", "drip", "500", "garbage", "close", "wrong-token", "forbidden", "refused", "tls"])
def test_every_fault_is_api_unreachable_while_events_are_answered(
    tmp_path: Path, rulebook: RuleBook, fault: str
) -> None:
    """Each fault raises region.api-unreachable within its timeout; no event waits on the API."""
    timeout = 1.0
    with running_api(tmp_path / "api", "crashloop") as api:
        settings = region_settings(tmp_path, api.kubeconfig, timeout_seconds=timeout, poll_seconds=0.2)
        mon = Monitor(settings, rulebook)
        mon.kube_env = {}
        with listening(mon) as sup:
            assert sup.send(state_frame("RUNNING", "containerd", serial=1)) < ANSWER_LIMIT
            assert sup.send(state_frame("RUNNING", "k3s", serial=2)) < ANSWER_LIMIT
            # A working API first: the crash loop is raised.
            deadline = time.monotonic() + 20
            while ("region.pod-crashloop", "rbd-api-6f6c565856-bq9bp") not in mon.book.active:
                assert sup.tick() < ANSWER_LIMIT
                assert time.monotonic() < deadline, "the first poll never arrived"
                time.sleep(0.05)
            break_api(api, fault)
            broke = time.monotonic()
            slowest = 0.0
            while not unreachable(mon):
                slowest = max(slowest, sup.tick())
                assert time.monotonic() - broke < timeout + 3.0, f"{fault}: no region.api-unreachable in time"
                time.sleep(0.05)
            assert slowest < ANSWER_LIMIT
            # The pod problem is frozen, not resolved, while the API is unreachable.
            assert ("region.pod-crashloop", "rbd-api-6f6c565856-bq9bp") in mon.book.active
            assert mon.region.api.startswith("unreachable: ")
            api.set_fault(None)  # release a hung handler before the server stops
