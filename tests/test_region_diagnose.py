"""`rainbond-watchdog diagnose`: every check once, bounded in time whatever the API does."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.helpers import reaped, wait_for
from tests.integration.supervisor_env import Program, Supervisor, _toml
from tests.kube_api.harness import running_api
from watchdog import cli

REPO = Path(__file__).resolve().parents[1]
CGROUP_LINE = (
        'E1130 08:12:44.123456      59 kubelet.go:1431] "Failed to create cgroup" err="cannot enter cgroupv2 '
        '\\"/sys/fs/cgroup/kubepods\\" with domain controllers -- it is in an invalid state"\n'
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """diagnose points structlog at this test's captured stderr: undo that for the next tests."""
    yield
    structlog.reset_defaults()


def write_config(tmp_path: Path, kubeconfig: Path, **kube: object) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = tmp_path / "watchdog.toml"
    conf.write_text(_toml({
        "status_file": str(tmp_path / "status" / "diagnosis.json"),
        "log_dir": str(tmp_path / "logs"),
        "supervisor_url": f"unix://{tmp_path / 'no-supervisor.sock'}",
        "host": {"paths": [str(tmp_path)]},
        "kubernetes": {"kubeconfig": str(kubeconfig), **kube},
    }))
    return conf


def test_diagnose_json_has_the_status_shape_and_the_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without supervisord, diagnose still asks the API; --json prints the status file's shape."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    with running_api(tmp_path / "api", "crashloop") as api:
        conf = write_config(tmp_path, api.kubeconfig)
        code = cli.main(["diagnose", "--json", "--config", str(conf)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["schema"] == 1 and doc["components"]["region"]["api"] == "ok"
    assert [p["id"] for p in doc["problems"]] == ["region.pod-crashloop"]
    assert not (tmp_path / "status" / "diagnosis.json").exists()


def test_diagnose_healthy_prints_like_status_and_writes_with_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A healthy region: exit 0, the human table, and --write leaves a 0644 status file."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    with running_api(tmp_path / "api") as api:
        conf = write_config(tmp_path, api.kubeconfig)
        code = cli.main(["diagnose", "--write", "--config", str(conf)])
    out = capsys.readouterr().out
    assert code == 0
    assert "api ok, pods 16/16 ready" in out
    path = tmp_path / "status" / "diagnosis.json"
    doc = json.loads(path.read_text())
    assert doc["components"]["region"]["pods_ready"] == 16 and doc["problems"] == []
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_diagnose_without_supervisord_reads_the_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """supervisord unreachable and no kubeconfig: the programs' logs are run through the rules."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    conf = write_config(tmp_path, tmp_path / "no-kubeconfig.yaml")
    (tmp_path / "logs" / "k3s.log").write_text(
        'time="2026-11-30T08:12:44Z" level=info msg="Starting k3s v1.25.16+k3s4"\n' + CGROUP_LINE)
    code = cli.main(["diagnose", "--json", "--config", str(conf)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [p["id"] for p in doc["problems"]] == ["k3s.cgroupv2-unsupported"]
    assert doc["problems"][0]["source"].endswith("k3s.log")
    assert doc["components"]["region"]["api"] == "not-started"


@pytest.mark.parametrize("fault", ["hang", "close"])
def test_diagnose_finishes_in_time_whatever_the_api_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A hanging API: diagnose ends within timeout_seconds plus a little, saying the API is unreachable."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    timeout = 1.0
    with running_api(tmp_path / "api") as api:
        api.set_fault(fault)
        conf = write_config(tmp_path, api.kubeconfig, timeout_seconds=timeout)
        started = time.monotonic()
        code = cli.main(["diagnose", "--json", "--config", str(conf)])
        took = time.monotonic() - started
        api.set_fault(None)
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and took < timeout + 2.0 + 1.5
    assert [p["id"] for p in doc["problems"]] == ["region.api-unreachable"]
    assert doc["components"]["region"]["api"].startswith("unreachable: ")


@pytest.mark.integration
@pytest.mark.slow
def test_under_real_supervisord_listener_and_diagnose_see_the_region(tmp_path: Path) -> None:
    """k3s is the API stand-in under a real supervisord: the listener polls it, diagnose (outside
    supervisord, over the configured socket) reads the programs' states and the same problem."""
    api_dir = tmp_path / "k3s"
    kubeconfig = api_dir / "kubeconfig.yaml"
    with reaped() as reaper:
        sup = Supervisor(
            tmp_path,
            reaper,
            [Program("k3s", f"{sys.executable} -m tests.kube_api.server --dir {api_dir} --scenario crashloop",
                     str(tmp_path / "logs" / "k3s.log"))],
            {"kubernetes": {"kubeconfig": str(kubeconfig), "api_grace_seconds": 0.0, "poll_seconds": 1.0}},
        )
        try:
            sup.start()
            wait_for(lambda: sup.state("k3s") == "RUNNING", 30, what="k3s RUNNING")

            def listener_saw_it() -> bool:
                try:
                    doc = json.loads(sup.status_file.read_text())
                except (OSError, json.JSONDecodeError):
                    return False
                return any(p["id"] == "region.pod-crashloop" for p in doc["problems"])

            wait_for(listener_saw_it, 40, interval=0.5, what="region.pod-crashloop in the status file")
            conf = sup.root / "diagnose.toml"
            conf.write_text(sup.watchdog_toml.read_text().replace(
                'status_file = ', f'supervisor_url = "unix://{sup.sock}"\nstatus_file = ', 1))
            env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERVISOR_")}
            done = subprocess.run([sys.executable, "-m", "watchdog", "diagnose", "--json", "--config", str(conf)],
                                  capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
            doc = json.loads(done.stdout)
            assert done.returncode == 1, done.stderr
            assert doc["components"]["k3s"]["state"] == "RUNNING"
            assert doc["components"]["containerd"]["state"] == "ABSENT"
            assert [p["id"] for p in doc["problems"]] == ["region.pod-crashloop"]
        finally:
            sup.stop()


def test_diagnose_write_keeps_what_the_listener_knew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diagnose --write` over the listener's file keeps a still-present problem's first_seen and count."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    conf = write_config(tmp_path, tmp_path / "no-kubeconfig.yaml")
    (tmp_path / "logs" / "k3s.log").write_text(CGROUP_LINE)
    assert cli.main(["diagnose", "--write", "--config", str(conf)]) == 1
    first = json.loads((tmp_path / "status" / "diagnosis.json").read_text())["problems"][0]
    time.sleep(1.1)  # RFC 3339 times have whole seconds: the second run must be visibly later
    assert cli.main(["diagnose", "--write", "--config", str(conf)]) == 1
    capsys.readouterr()
    again = json.loads((tmp_path / "status" / "diagnosis.json").read_text())["problems"][0]
    assert again["id"] == first["id"] == "k3s.cgroupv2-unsupported"
    assert again["first_seen"] == first["first_seen"] and again["last_seen"] > first["last_seen"]
    assert again["count"] == first["count"] + 1
