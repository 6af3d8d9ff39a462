"""The Monitor under each image layout: the runtime program, the logs read, the status file's `layout`."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from tests.allinone.simulation import toml_text
from tests.helpers import state_frame, tick_frame
from tests.test_app import Clock, FakeRpc, feed, status
from watchdog import cli
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ProcessInfo
from watchdog.status_command import run_status

GRAPHDRIVER = 'time="2026-11-30T08:12:44Z" level=fatal msg="Error starting daemon: error initializing graphdriver: driver not supported"'
SNAPSHOTTER = ('time="2026-11-30T08:12:44Z" level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" '
               'error="failed to create CRI service: failed to find snapshotter \\"overlayfs\\""')
V5_7 = ("init_rainbond", "docker", "k3s", "console", "cloudadaptor", "log")
V5_14 = ("init_rainbond", "k3s", "console", "cloudadaptor", "log")


def infos(names: tuple[str, ...], **states: str) -> list[ProcessInfo]:
    return [ProcessInfo(n, states.get(n, "STOPPED")) for n in names]


def embedded(settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    data = tmp_path / "data"
    log = data / "k3s" / "agent" / "containerd" / "containerd.log"
    log.parent.mkdir(parents=True)
    return dataclasses.replace(settings, host=dataclasses.replace(settings.host, data_dir=str(data))), log


def test_dockerd_layout_diagnoses_the_docker_program_from_dind_log(settings: Settings, rulebook: RuleBook) -> None:
    Path(settings.log_dir, "dind.log").write_text(GRAPHDRIVER + "\n")
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc(infos(V5_7, docker="FATAL")))
    feed(mon, tick_frame(int(clock.t), 1), state_frame("FATAL", "docker", "BACKOFF", 2))
    doc = status(settings)
    assert doc["layout"] == "dockerd"
    assert doc["components"]["containerd"]["state"] == "FATAL" and doc["phase"] == "containerd"
    (p,) = [p for p in doc["problems"] if p["component"] == "containerd"]
    assert (p["id"], p["subject"]) == ("containerd.storage-driver-failed", "docker")
    assert p["source"].endswith("dind.log") and GRAPHDRIVER in p["evidence"]


def test_embedded_layout_skips_the_runtime_and_reads_its_log_when_k3s_fails(
    settings: Settings, rulebook: RuleBook, tmp_path: Path
) -> None:
    settings, runtime_log = embedded(settings, tmp_path)
    runtime_log.write_text('time="2026-11-30T08:12:40Z" level=info msg="starting containerd"\n' + SNAPSHOTTER + "\n")
    Path(settings.log_dir, "k3s.log").write_text('time="2026-11-30T08:12:44Z" level=fatal msg="containerd exited"\n')
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc(infos(V5_14, console="RUNNING")))
    feed(mon, tick_frame(int(clock.t), 1), state_frame("STARTING", "k3s", "STOPPED", 2),
         state_frame("BACKOFF", "k3s", "STARTING", 3), state_frame("FATAL", "k3s", "BACKOFF", 4))
    doc = status(settings)
    assert doc["layout"] == "embedded"
    assert doc["components"]["containerd"]["state"] == "ABSENT"
    assert doc["timeline"]["containerd"] is None  # a skipped stage is never reached
    assert doc["phase"] == "k3s"  # the lowest failing layer, though the console has begun
    ids = {(p["id"], p["subject"], p["component"]) for p in doc["problems"]}
    assert ("containerd.snapshotter-failed", "k3s", "k3s") in ids
    assert not any(p["id"] == "k3s.start-failed" for p in doc["problems"])  # the specific cause replaced it
    (p,) = [p for p in doc["problems"] if p["id"] == "containerd.snapshotter-failed"]
    assert p["source"] == str(runtime_log) and SNAPSHOTTER in p["evidence"]


def test_configured_embedded_layout_needs_no_supervisord(settings: Settings, rulebook: RuleBook) -> None:
    settings = dataclasses.replace(settings, layout="embedded")
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock)
    feed(mon, tick_frame(int(clock.t), 1))
    doc = status(settings)
    assert doc["layout"] == "embedded" and doc["components"]["containerd"]["state"] == "ABSENT"
    assert doc["phase"] == "images"


def test_auto_without_supervisord_assumes_containerd(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock)
    feed(mon, tick_frame(int(clock.t), 1), state_frame("RUNNING", "containerd", "STARTING", 2))
    doc = mon.document(clock.t)
    assert doc["layout"] == "containerd" and doc["components"]["containerd"]["state"] == "RUNNING"


def test_the_layout_is_said_once_on_stderr(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc(infos(V5_7)))
    with capture_logs() as logs:
        feed(mon, tick_frame(int(clock.t), 1), tick_frame(int(clock.t) + 60, 2, kind="TICK_60"))
    said = [e for e in logs if e["event"] == "layout"]
    assert len(said) == 1 and said[0]["layout"] == "dockerd" and said[0]["runtime"] == "docker"


def test_status_names_the_layout(settings: Settings, rulebook: RuleBook, tmp_path: Path) -> None:
    settings, _ = embedded(settings, tmp_path)
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc(infos(V5_14)))
    feed(mon, tick_frame(int(clock.t), 1))
    out = io.StringIO()
    run_status(dataclasses.replace(settings, language="zh,en"), None, as_json=False, out=out, now=clock.t)
    assert "Layout: embedded" in out.getvalue() and "镜像布局: embedded" in out.getvalue()


def test_fatal_k3s_with_a_running_console_is_phase_k3s(settings: Settings, rulebook: RuleBook) -> None:
    """Issue 9's bug, end to end: the console has begun, k3s is FATAL: the phase is k3s."""
    clock = Clock()
    names = ("containerd", "k3s", "console")
    mon = Monitor(settings, rulebook, clock=clock,
                  rpc=FakeRpc(infos(names, containerd="RUNNING", k3s="FATAL", console="RUNNING")))
    feed(mon, tick_frame(int(clock.t), 1))
    doc = status(settings)
    assert doc["layout"] == "containerd" and doc["phase"] == "k3s" and doc["overall"] == "failed"


def test_diagnose_without_supervisord_finds_the_embedded_layout_by_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diagnose` with supervisord unreachable: the embedded runtime's log tells the layout, and is read."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    structlog.reset_defaults()
    (tmp_path / "logs").mkdir()
    runtime_log = tmp_path / "data" / "k3s" / "agent" / "containerd" / "containerd.log"
    runtime_log.parent.mkdir(parents=True)
    runtime_log.write_text(SNAPSHOTTER + "\n")
    conf = tmp_path / "watchdog.toml"
    conf.write_text(toml_text({
        "status_file": str(tmp_path / "status" / "diagnosis.json"), "log_dir": str(tmp_path / "logs"),
        "supervisor_url": f"unix://{tmp_path / 'no-supervisor.sock'}",
        "host": {"paths": [str(tmp_path)], "data_dir": str(tmp_path / "data")},
        "kubernetes": {"kubeconfig": str(tmp_path / "no-kubeconfig.yaml")},
    }))
    code = cli.main(["diagnose", "--json", "--config", str(conf)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["layout"] == "embedded"
    assert doc["components"]["containerd"]["state"] == "ABSENT"
    (p,) = [p for p in doc["problems"] if p["id"] == "containerd.snapshotter-failed"]
    assert (p["subject"], p["component"], p["source"]) == ("k3s", "k3s", str(runtime_log))


def test_containerd_layout_reads_containerd_log_when_k3s_fails(settings: Settings, rulebook: RuleBook) -> None:
    """In every layout a k3s failure is diagnosed from k3s.log and the runtime's log: here a RUNNING
    containerd whose CRI plugin found no snapshotter, and k3s giving up on it."""
    Path(settings.log_dir, "containerd.log").write_text(SNAPSHOTTER + "\n")
    Path(settings.log_dir, "k3s.log").write_text('time="2026-11-30T08:12:50Z" level=fatal msg="it broke"\n')
    clock = Clock()
    names = ("containerd", "k3s", "console")
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc(infos(names, containerd="RUNNING", k3s="FATAL")))
    feed(mon, tick_frame(int(clock.t), 1), state_frame("FATAL", "k3s", "BACKOFF", 2))
    doc = status(settings)
    assert doc["layout"] == "containerd" and doc["phase"] == "k3s"
    assert [(p["id"], p["subject"], p["component"]) for p in doc["problems"]] == \
        [("containerd.snapshotter-failed", "k3s", "k3s")]


def test_generic_k3s_failure_quotes_its_own_log_first(settings: Settings, rulebook: RuleBook, tmp_path: Path) -> None:
    """A long runtime log does not crowd k3s's own last lines out of `k3s.start-failed`'s evidence."""
    settings, runtime_log = embedded(settings, tmp_path)
    runtime_log.write_text("".join(f'level=info msg="runtime line {i}"\n' for i in range(100)))
    Path(settings.log_dir, "k3s.log").write_text("".join(f'level=info msg="k3s line {i}"\n' for i in range(100)))
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc(infos(V5_14, k3s="FATAL")))
    feed(mon, tick_frame(int(clock.t), 1), state_frame("FATAL", "k3s", "BACKOFF", 2))
    (p,) = [p for p in status(settings)["problems"] if p["id"] == "k3s.start-failed"]
    assert len(p["evidence"]) <= 20
    assert 'level=info msg="k3s line 99"' in p["evidence"] and 'level=info msg="runtime line 99"' in p["evidence"]
    k3s_lines = [e for e in p["evidence"] if "k3s line" in e]
    runtime_lines = [e for e in p["evidence"] if "runtime line" in e]
    assert len(k3s_lines) >= len(runtime_lines) >= 5
    assert p["evidence"].index(k3s_lines[-1]) < p["evidence"].index(runtime_lines[0])  # in the logs' order


def test_offline_diagnose_raises_one_problem_per_cause_and_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """containerd.log is read for containerd and for k3s: a cause in it is raised once, under containerd."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    structlog.reset_defaults()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "containerd.log").write_text(SNAPSHOTTER + "\n")
    conf = tmp_path / "watchdog.toml"
    conf.write_text(toml_text({
        "status_file": str(tmp_path / "status" / "diagnosis.json"), "log_dir": str(tmp_path / "logs"),
        "supervisor_url": f"unix://{tmp_path / 'no-supervisor.sock'}", "host": {"paths": [str(tmp_path)]},
        "kubernetes": {"kubeconfig": str(tmp_path / "no-kubeconfig.yaml")},
    }))
    assert cli.main(["diagnose", "--json", "--config", str(conf)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["layout"] == "containerd"
    assert [(p["id"], p["subject"]) for p in doc["problems"]] == [("containerd.snapshotter-failed", "containerd")]
