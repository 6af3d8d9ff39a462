"""Restart: the listener is SIGKILLed under a real supervisord, restarted, and forgets nothing.

Twice: first with the previous status file in place (problems keep their ``first_seen``), then
with it deleted, which leaves only the XML-RPC resync to find the FATAL program again.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import reaped, wait_for
from tests.integration.supervisor_env import Program, Supervisor
from watchdog.sinks.status_file import parse_rfc3339

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _status(sup: Supervisor) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(sup.status_file.read_text())
        return doc
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _listener_pid(sup: Supervisor) -> int:
    info = sup.proxy().getProcessInfo("watchdog:watchdog")
    return int(info["pid"]) if info["statename"] == "RUNNING" else 0


def _problems(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(p["id"], p["subject"]): p["first_seen"] for p in doc.get("problems", [])}


def _written_by_new_listener(sup: Supervisor, old_pid: int, wanted: set[tuple[str, str]]) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        doc = _status(sup)
        pid = doc.get("watchdog", {}).get("pid")
        if pid and pid != old_pid and wanted <= set(_problems(doc)) and doc["components"]["k3s"]["state"] == "FATAL":
            return doc
        return None

    return wait_for(ready, 40, what="a status file from the restarted listener with every problem")


def test_sigkilled_listener_is_restarted_resyncs_and_keeps_every_active_problem(tmp_path: Path) -> None:
    with reaped() as reaper:
        logs = tmp_path / "logs"
        sup = Supervisor(
            tmp_path,
            reaper,
            [Program("k3s", f"{sys.executable} -m tests.allinone.fake_k3s --scenario crash", str(logs / "k3s.log"),
                     {"startretries": "1"})],
            {"resolve_after_seconds": 2.0},
        )
        try:
            sup.start()
            wait_for(lambda: sup.state("k3s") == "FATAL", 40, what="k3s FATAL")
            before = wait_for(lambda: (d := _status(sup)) and any(s == "k3s" for _, s in _problems(d)) and d, 30,
                              what="a k3s problem in the status file")
            active = _problems(before)
            first_pid = wait_for(lambda: _listener_pid(sup), 20, what="the listener RUNNING")
            assert before["watchdog"]["pid"] == first_pid

            # first_seen has a resolution of one second: make a re-raised problem distinguishable.
            newest = max(parse_rfc3339(t) or 0.0 for t in active.values())
            wait_for(lambda: time.time() > newest + 2.5, 10, what="time to pass first_seen")

            # 1. SIGKILL with the status file in place: restarted, nothing lost, first_seen kept.
            os.kill(first_pid, signal.SIGKILL)
            after = _written_by_new_listener(sup, first_pid, set(active))
            for key, first_seen in active.items():
                assert _problems(after)[key] == first_seen, key
            second_pid = wait_for(lambda: _listener_pid(sup) not in (0, first_pid) and _listener_pid(sup), 20,
                                  what="the restarted listener RUNNING")

            # 2. SIGKILL with the status file gone: the XML-RPC resync alone finds the FATAL k3s again.
            sup.status_file.unlink()
            os.kill(second_pid, signal.SIGKILL)
            again = _written_by_new_listener(sup, second_pid, {k for k in active if k[1] == "k3s"})
            assert {k for k in _problems(again) if k[1] == "k3s"} == {k for k in active if k[1] == "k3s"}
            assert again["overall"] == "failed"
        finally:
            sup.stop()
        log = sup.supervisord_log()
        assert "bad result" not in log.lower()
        assert "entered UNKNOWN state" not in log
        raised = [json.loads(line) for line in sup.listener_stderr().splitlines()
                  if line.startswith("{") and '"problem_raised"' in line]
        # Raised once by the first listener; the restored one does not raise again; the third,
        # without a previous file, raises what it finds afresh.
        k3s_raised = [r for r in raised if r["subject"] == "k3s" and r["id"] != "process.flapping"]
        assert 1 <= len(k3s_raised) <= 2 * len({k for k in active if k[1] == "k3s"}), k3s_raised
