"""`make demo` end to end: a real supervisord, the listener, the stand-ins, then nothing left running."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import supervisor3
from tests.allinone.simulation import REPO, RUN_ENV, end_process_groups, kube_api_available, processes_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], str]:
    """Run the demo as `make demo` does; returns the run, the final status document and the run marker."""
    token = secrets.token_hex(8)
    out = tmp_path / "status.json"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tests.allinone.demo", "--json-out", str(out), *args],
            cwd=REPO, env={**os.environ, RUN_ENV: token}, capture_output=True, text=True, timeout=170,
        )
    finally:
        leftovers = processes_with(token)
        end_process_groups(leftovers)  # never leave them behind, even when the demo was killed
    assert leftovers == [], f"processes left running: {leftovers}"
    doc = json.loads(out.read_text()) if out.exists() else {}
    return run, doc, token


def _folder_of(stdout: str) -> Path:
    m = re.search(r"^folder (\S+);", stdout, re.M)
    assert m, stdout[:500]
    return Path(m.group(1))


def _both_languages_in_order(stdout: str) -> None:
    zh, en = stdout.find("整体状态:"), stdout.find("Overall:")
    assert 0 <= zh < en, "status is printed in Chinese, then English"


def test_healthy_demo_boots_every_phase_and_leaves_nothing_running(tmp_path: Path) -> None:
    """healthy: every phase comes up, the diagnosis is healthy/ready, no error problem, nothing left."""
    if not kube_api_available():
        pytest.skip("the Kubernetes API stand-in (tests/kube_api/server.py) is not in this checkout")
    run, doc, _ = _demo(tmp_path, "--scenario", "healthy", "--keep")
    folder = _folder_of(run.stdout)
    try:
        log = (folder / "supervisord.log").read_text(errors="replace")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    # The listener spoke the protocol throughout: no bad result, never UNKNOWN, no lost events.
    assert "bad result" not in log.lower()
    assert "entered UNKNOWN state" not in log
    assert "event buffer overflowed" not in log
    assert "exited: watchdog" not in log
    assert doc["overall"] == "healthy" and doc["phase"] == "ready", doc.get("problems")
    assert {doc["components"][c]["state"] for c in ("containerd", "k3s", "console")} == {"RUNNING"}
    assert not [p for p in doc["problems"] if p["severity"] == "error"]
    assert all(doc["timeline"].get(p) for p in ("containerd", "images", "k3s", "region", "console"))
    _both_languages_in_order(run.stdout)
    # The boot in one line, in docker logs, once: how long each phase took.
    ready = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO: \[watchdog\] Rainbond 已就绪，用时 \S+：(.*)$",
                       run.stdout, re.M)
    assert len(ready) == 1, run.stdout[-3000:]
    assert [part.split(" ")[0] for part in ready[0].split("，")] == ["containerd", "images", "k3s", "region", "console"]


def test_cgroupv2_demo_diagnoses_k3s_and_leaves_nothing_running(tmp_path: Path) -> None:
    """cgroupv2 (the default): k3s goes FATAL and the diagnosis names cgroup v2 with its evidence."""
    run, doc, _ = _demo(tmp_path, "--scenario", "cgroupv2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert doc["overall"] == "failed" and doc["phase"] == "k3s"
    problem = next(p for p in doc["problems"] if p["id"] == "k3s.cgroupv2-unsupported")
    assert problem["subject"] == "k3s"
    assert any("cannot enter cgroupv2" in line for line in problem["evidence"])
    assert doc["components"]["k3s"]["state"] == "FATAL"
    assert doc["components"]["containerd"]["state"] == "RUNNING"
    _both_languages_in_order(run.stdout)
    assert not _folder_of(run.stdout).exists(), "the temporary folder is removed"
    # docker logs: the raise in the init script's style (zh first, the first step, en, the command), no JSON.
    lines = [line for line in run.stdout.splitlines() if " [watchdog] " in line]
    head = next(i for i, line in enumerate(lines) if "ERROR: [watchdog] k3s.cgroupv2-unsupported (k3s): " in line)
    assert "处理建议: " in lines[head + 1] and "en: K3s cannot enter cgroup v2" in lines[head + 2]
    assert lines[head + 3].endswith("docker exec rainbond-allinone rainbond-watchdog status")
    assert not [line for line in lines if line.lstrip().startswith("{")]


def test_bind_mount_demo_diagnoses_the_image_load_loop_with_the_containerd_stand_in(tmp_path: Path) -> None:
    """bind-mount: the init program's failing image load (PROCESS_LOG) is diagnosed; k3s never starts."""
    run, doc, _ = _demo(tmp_path, "--scenario", "bind-mount", "--containerd", "stand-in")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    ids = {p["id"] for p in doc["problems"]}
    assert ids & {"images.bind-mount-storage", "images.load-failed"}, ids
    assert doc["phase"] == "images"
    assert doc["components"]["k3s"]["state"] in ("STOPPED", "UNKNOWN")
    assert "containerd: stand-in" in run.stdout


def test_bind_mount_demo_under_the_images_supervisor_3(tmp_path: Path) -> None:
    """`make demo SUPERVISOR=3`: supervisor 3.3.1 on Python 2.7 frames in bytes; the init program's
    ANSI-coloured `····` lines still reach the diagnosis (the image-load loop), nothing is lost."""
    try:
        supervisor3.ensure_installed()
    except supervisor3.Supervisor3Unavailable as e:
        pytest.skip(f"supervisor {supervisor3.VERSION}: {e}")
    run, doc, _ = _demo(tmp_path, "--scenario", "bind-mount", "--containerd", "stand-in", "--supervisor", "3", "--keep")
    folder = _folder_of(run.stdout)
    try:
        log = (folder / "supervisord.log").read_text(errors="replace")
        alerts = (folder / "supervisord.stderr").read_text(errors="replace")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "supervisord 3.3.1 on Python 2.7" in run.stdout
    ids = {p["id"] for p in doc["problems"]}
    assert ids & {"images.bind-mount-storage", "images.load-failed"}, ids
    assert doc["phase"] == "images"
    assert "bad result" not in log.lower() and "entered UNKNOWN state" not in log
    assert "event buffer overflowed" not in log
    # The listener's stderr is in text (the default alert_format): a resync or protocol error
    # would stand there by its event name (the framing decision itself is tested in JSON by
    # tests/integration/test_dind_layout.py).
    assert "protocol_resync" not in alerts and "protocol_error" not in alerts
def test_embedded_layout_demo_diagnoses_the_snapshotter_from_k3s_own_containerd_log(tmp_path: Path) -> None:
    """LAYOUT=embedded (v5.14-style): no containerd program; the embedded containerd's snapshotter failure,
    logged under the data folder, is k3s's diagnosis; the phase is k3s and the layout is named."""
    run, doc, _ = _demo(tmp_path, "--scenario", "snapshotter", "--layout", "embedded")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert doc["layout"] == "embedded" and doc["phase"] == "k3s" and doc["overall"] == "failed"
    assert doc["components"]["containerd"]["state"] == "ABSENT"
    assert doc["components"]["k3s"]["state"] == "FATAL"
    problem = next(p for p in doc["problems"] if p["id"] == "containerd.snapshotter-failed")
    assert problem["subject"] == "k3s" and problem["component"] == "k3s"
    assert problem["source"].endswith("/data/k3s/agent/containerd/containerd.log")
    assert any("failed to find snapshotter" in line for line in problem["evidence"])
    assert "Layout: embedded" in run.stdout and "programs init, k3s, console" in run.stdout


def test_dockerd_layout_demo_diagnoses_the_docker_program_from_dind_log(tmp_path: Path) -> None:
    """LAYOUT=dockerd (v5.7-style): the `docker` program plays containerd's part, dind.log is its log."""
    run, doc, _ = _demo(tmp_path, "--scenario", "graphdriver", "--layout", "dockerd")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert doc["layout"] == "dockerd" and doc["phase"] == "containerd"
    problem = next(p for p in doc["problems"] if p["id"] == "containerd.storage-driver-failed")
    assert problem["subject"] == "docker" and problem["source"].endswith("/logs/dind.log")
    assert doc["components"]["k3s"]["state"] in ("STOPPED", "UNKNOWN")


def test_embedded_layout_healthy_demo_boots_without_a_runtime_program(tmp_path: Path) -> None:
    """LAYOUT=embedded, healthy: a v5.14-style boot (no runtime program, k3s imports the images) ends ready;
    the skipped runtime stage stays ABSENT with no timeline entry."""
    if not kube_api_available():
        pytest.skip("the Kubernetes API stand-in (tests/kube_api/server.py) is not in this checkout")
    run, doc, _ = _demo(tmp_path, "--scenario", "healthy", "--layout", "embedded", "--keep")
    folder = _folder_of(run.stdout)
    try:
        k3s_log = (folder / "logs" / "k3s.log").read_text(errors="replace")
        runtime_log = (folder / "data" / "k3s" / "agent" / "containerd" / "containerd.log").read_text()
        has_containerd_log = (folder / "logs" / "containerd.log").exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert doc["layout"] == "embedded" and doc["overall"] == "healthy" and doc["phase"] == "ready", doc.get("problems")
    assert doc["components"]["containerd"]["state"] == "ABSENT"
    assert doc["timeline"]["containerd"] is None
    assert all(doc["timeline"].get(p) for p in ("images", "k3s", "region", "console"))
    assert "Imported images from" in k3s_log and "containerd successfully booted" in runtime_log
    assert not has_containerd_log
