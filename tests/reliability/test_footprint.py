"""Footprint: the listener starts without the Kubernetes client and stays small under load."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import steady_events, write_config, write_log
from bench.listener import Listener, listener_env, state_frame, watchdog_argv

REPO = Path(__file__).resolve().parents[2]
RSS_LIMIT_KIB = 60 * 1000
"""The issue's target: 60 MB of peak resident memory for the listener."""


def test_starting_the_listener_does_not_import_the_kubernetes_client() -> None:
    """The client (and its urllib3, yaml, oauthlib ...) is imported on the first API poll, not at start."""
    code = ("import sys, watchdog.cli, watchdog.app\n"
            "print(sorted(m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(REPO),
                          check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.integration
def test_peak_rss_stays_under_60_mb_through_steady_and_failure_events(tmp_path: Path) -> None:
    """5000 steady events and 400 failures with a 64 MB log: VmHWM under the target."""
    write_log(tmp_path / "logs" / "k3s.log", 64 * 1024 * 1024, 1024 * 1024)
    config = write_config(tmp_path, tmp_path / "logs")
    with Listener(watchdog_argv(config), listener_env()) as dog:
        for data in steady_events(5000):
            dog.send(data)
        for i in range(200):
            dog.send(state_frame("STARTING", "k3s", "BACKOFF", 10_000 + 2 * i))
            dog.send(state_frame("BACKOFF", "k3s", "STARTING", 10_001 + 2 * i, expected=0))
        peak = dog.peak_rss_kib()
    assert 0 < peak < RSS_LIMIT_KIB, f"peak RSS {peak / 1024:.1f} MiB"
