"""The listener under a real supervisord: a failure travels to the status file and stderr."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import reaped, wait_for
from tests.integration.containerd_env import require_containerd, write_config
from tests.integration.supervisor_env import GENERATIONS, Program, Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _status(sup: Supervisor) -> dict:
    try:
        return json.loads(sup.status_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watchdog", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: f"supervisor{g}")
def test_real_containerd_healthy_and_fatal_k3s_reach_status_file_and_stderr(tmp_path: Path, generation: int) -> None:
    """containerd RUNNING raises nothing; a k3s that exits at once goes FATAL and is diagnosed (3.3.1 and 4)."""
    containerd = require_containerd()
    with reaped() as reaper:
        logs = tmp_path / "logs"
        conf = write_config(tmp_path / "containerd")
        sup = Supervisor(
            tmp_path,
            reaper,
            [
                Program("containerd", f"{containerd} --config {conf}", str(logs / "containerd.log"), {"priority": "10"}),
                Program(
                    "k3s",
                    f"{sys.executable} -m tests.allinone.fake_k3s --scenario crash",
                    str(logs / "k3s.log"),
                    {"priority": "20", "startretries": "1"},
                ),
            ],
            {"resolve_after_seconds": 2.0},
            generation,
        )
        try:
            sup.start()
            wait_for(lambda: sup.state("k3s") == "FATAL", 30, what="k3s FATAL")
            wait_for(lambda: sup.state("containerd") == "RUNNING", 30, what="containerd RUNNING")
            # The FATAL transition itself may be coalesced into the next write (TICK_5 at the latest).
            wait_for(
                lambda: (d := _status(sup)) and any(p["subject"] == "k3s" for p in d.get("problems", []))
                and d["components"]["k3s"]["state"] == "FATAL",
                20,
                what="a FATAL k3s with its problem in the status file",
            )
            wait_for(lambda: _status(sup).get("components", {}).get("containerd", {}).get("state") == "RUNNING", 20,
                     what="containerd RUNNING in the status file")
            doc = _status(sup)
            assert doc["components"]["k3s"]["state"] == "FATAL"
            assert doc["components"]["console"]["state"] == "ABSENT"
            assert doc["overall"] == "failed"
            assert doc["phase"] == "k3s"
            k3s = [p for p in doc["problems"] if p["subject"] == "k3s"]
            assert all(p["component"] == "k3s" for p in k3s)
            assert not [p for p in doc["problems"] if p["subject"] == "containerd" and p["severity"] == "error"]
            evidence = "\n".join(e for p in k3s for e in p["evidence"])
            assert "address already in use" in evidence
            assert oct(sup.status_file.stat().st_mode & 0o777) == "0o644"

            status = _cli("status", "--file", str(sup.status_file), "--config", str(sup.watchdog_toml))
            assert status.returncode == 1, status.stderr
            assert "k3s" in status.stdout
            check = _cli("check", "--file", str(sup.status_file), "--config", str(sup.watchdog_toml))
            assert check.returncode == 1 and check.stdout == ""

            raised = [json.loads(line) for line in sup.listener_stderr().splitlines()
                      if line.startswith("{") and '"problem_raised"' in line]
            assert any(r["subject"] == "k3s" and r["id"].startswith("k3s.") for r in raised)
            chosen = [json.loads(line) for line in sup.listener_stderr().splitlines()
                      if line.startswith("{") and '"supervisor_len_unit"' in line]
            assert [c["unit"] for c in chosen] == ["bytes" if generation == 3 else "characters"]
        finally:
            sup.stop()
        log = sup.supervisord_log()
        assert "bad result" not in log.lower()
        assert "entered UNKNOWN state" not in log
        assert "event buffer overflowed" not in log
