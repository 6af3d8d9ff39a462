"""Test harness around the stand-in: a running API, settings pointing at it, a Monitor with k3s up."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import frame, state_frame
from tests.kube_api import objects
from tests.kube_api.server import KubeApi
from watchdog.app import Monitor
from watchdog.config import Settings, settings_from_dict
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import Envelope
from watchdog.sources.supervisor_protocol import parse_header


@contextmanager
def running_api(directory: Path, scenario: str = "healthy", extra_pods: int = 0) -> Iterator[KubeApi]:
    api = KubeApi(objects.scenario(scenario, time.time(), extra_pods), directory)
    with api:
        yield api


def region_settings(tmp_path: Path, kubeconfig: Path | str, **kube: Any) -> Settings:
    (tmp_path / "logs").mkdir(exist_ok=True)
    k = {"kubeconfig": str(kubeconfig), "api_grace_seconds": 0.0, "timeout_seconds": 2.0, **kube}
    return settings_from_dict(
        {
            "status_file": str(tmp_path / "status" / "diagnosis.json"),
            "log_dir": str(tmp_path / "logs"),
            "host": {"paths": [str(tmp_path)]},
            "kubernetes": k,
        },
        source=str(tmp_path / "watchdog.toml"),
    )


def envelope(raw: str) -> Envelope:
    header, payload = raw.split("\n", 1)
    return Envelope(parse_header(header), payload)


def k3s_running_monitor(settings: Settings, rules: RuleBook) -> Monitor:
    """A Monitor that has seen containerd and k3s reach RUNNING (no supervisord RPC, no $KUBECONFIG)."""
    mon = Monitor(settings, rules)
    mon.kube_env = {}
    for i, name in enumerate(("containerd", "k3s"), 1):
        mon.handle(envelope(state_frame("RUNNING", name, serial=i, pid=100 + i)))
    return mon


def poll_now(mon: Monitor, timeout: float = 15.0) -> None:
    """Start a poll, wait for it, apply it (what the TICKs of the listener do over seconds).

    A poll still in flight from before (short ``poll_seconds``) is waited for and applied first,
    so that the poll applied last started after the caller's changes to the stand-in.
    """
    assert mon.wait_background(timeout), "a background poll did not finish"
    mon.handle(envelope(frame("TICK_5", f"when:{int(time.time())}", 90)))
    task = mon.region_watcher.task
    if task is not None and not task.busy and mon.region.api != "not-started":
        # The last poll ended less than poll_seconds ago: start the fresh one the test wants.
        task.maybe_start(time.time(), force=True)
    assert mon.wait_background(timeout), "the background poll did not finish"
    mon.handle(envelope(frame("TICK_5", f"when:{int(time.time())}", 91)))


def active_ids(mon: Monitor) -> set[tuple[str, str]]:
    return {p.key for p in mon.book.active.values()}


def region_ids(mon: Monitor) -> set[tuple[str, str]]:
    return {k for k in active_ids(mon) if k[0].startswith(("region.", "node."))}
