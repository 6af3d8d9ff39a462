"""The simulated allinone's parts: stand-ins, config writing, process bookkeeping, scenarios."""
from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.allinone.demo import InitView, concluded
from tests.allinone.simulation import (
    REPO,
    RUN_ENV,
    SCENARIOS,
    end_process_groups,
    free_port,
    known_keys_only,
    processes_with,
    toml_text,
)
from tests.helpers import reaped, wait_for
from watchdog.config import settings_from_dict
from watchdog.diagnosis.rules import RuleBook


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_console_stand_in_serves_http_until_sigterm() -> None:
    """The console stand-in answers HTTP on its port and exits 0 on SIGTERM."""
    port = free_port()
    with reaped() as reaper:
        p = reaper.spawn([sys.executable, "-m", "tests.allinone.fake_console", "--port", str(port)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: _answers(port), 15, what="console stand-in answering")
        p.terminate()
        assert p.wait(timeout=10) == 0
        out = p.stdout.read().decode() if p.stdout else ""
    assert f"Listening at: http://127.0.0.1:{port}" in out
    assert '"GET / HTTP/1.1" 200' in out


def _connects(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def test_containerd_stand_in_accepts_connections_and_removes_its_socket(tmp_path: Path) -> None:
    """The containerd stand-in listens on its unix socket, logs like containerd, cleans up on SIGTERM."""
    sock = tmp_path / "containerd.sock"
    with reaped() as reaper:
        p = reaper.spawn([sys.executable, "-m", "tests.allinone.fake_containerd", "--address", str(sock)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: _connects(sock), 15, what="containerd stand-in socket")
        p.terminate()
        assert p.wait(timeout=10) == 0
        out = p.stdout.read().decode() if p.stdout else ""
    assert not sock.exists()
    assert re.search(r'level=info msg="containerd successfully booted in', out)


def test_k3s_stand_in_failure_lines_are_recognised_by_the_shipped_rules(rulebook: RuleBook) -> None:
    """Each failing k3s scenario of the demo prints lines that the packaged rules diagnose."""
    wanted = {"cgroupv2": "k3s.cgroupv2-unsupported", "conntrack": "k3s.conntrack-permission-denied",
              "disk-full": "host.disk-full"}
    for k3s_scenario, problem_id in wanted.items():
        out = subprocess.run([sys.executable, "-m", "tests.allinone.fake_k3s", "--scenario", k3s_scenario],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
        assert out.returncode == 1
        ids = {m.rule.id for m in rulebook.match(out.stdout.splitlines(), "k3s")}
        assert problem_id in ids, (k3s_scenario, ids)


def test_embedded_k3s_stand_in_logs_its_containerd_to_the_data_folder(tmp_path: Path, rulebook: RuleBook) -> None:
    """Embedded layout: the runtime's lines go to <data_dir>/k3s/agent/containerd/containerd.log, not
    k3s's stdout; the snapshotter scenario is diagnosed from that file under k3s; a healthy k3s imports
    the images of agent/images itself."""
    log = tmp_path / "k3s" / "agent" / "containerd" / "containerd.log"
    out = subprocess.run([sys.executable, "-m", "tests.allinone.fake_k3s", "--scenario", "snapshotter",
                          "--embedded-data-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert f"Logging containerd to {log}" in out.stdout and "failed to find snapshotter" not in out.stdout
    ids = {m.rule.id for m in rulebook.match(log.read_text().splitlines(), "k3s")}
    assert "containerd.snapshotter-failed" in ids, ids
    healthy = tmp_path / "healthy"
    (healthy / "k3s" / "agent" / "images").mkdir(parents=True)
    (healthy / "k3s" / "agent" / "images" / "rainbond.tar").write_bytes(b"")
    with reaped() as reaper:
        p = reaper.spawn([sys.executable, "-m", "tests.allinone.fake_k3s", "--embedded-data-dir", str(healthy)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            if "k3s is up and running" in line:
                break
        p.terminate()
        assert p.wait(timeout=10) == 0
    assert any("Imported images from" in x and "rainbond.tar" in x for x in lines)
    runtime = (healthy / "k3s" / "agent" / "containerd" / "containerd.log").read_text()
    assert "containerd successfully booted" in runtime
    assert not [m.rule.id for m in rulebook.match(runtime.splitlines()) if m.rule.severity.value == "error"]


def test_dockerd_stand_in_graphdriver_failure_is_a_storage_driver_problem(tmp_path: Path, rulebook: RuleBook) -> None:
    out = subprocess.run([sys.executable, "-m", "tests.allinone.fake_dockerd", "--address", str(tmp_path / "s"),
                          "--scenario", "graphdriver"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert [m.rule.id for m in rulebook.match(out.stdout.splitlines(), "containerd")] == \
        ["containerd.storage-driver-failed"]


def test_makefile_demo_takes_a_layout_and_defaults_to_containerd() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^LAYOUT \?= containerd$", makefile, re.M)
    assert "--layout $(LAYOUT)" in makefile
    listed = re.search(r"LAYOUT=([a-z|]+)\)", makefile)
    assert listed is not None and set(listed.group(1).split("|")) == {"containerd", "embedded", "dockerd"}


def test_demo_refuses_a_scenario_of_another_layout() -> None:
    from tests.allinone.demo import main

    assert main(["--scenario", "snapshotter", "--layout", "containerd"]) == 2
    assert main(["--scenario", "graphdriver", "--layout", "embedded"]) == 2


def test_every_scenario_expects_problem_ids_the_catalogs_define(rulebook: RuleBook) -> None:
    """A scenario waits only for problem ids that exist in conf/problems.toml or conf/rules.toml."""
    for scenario in SCENARIOS.values():
        for problem_id in scenario.expected:
            rulebook.texts(problem_id)  # KeyError when no file defines it


def test_makefile_lists_every_scenario() -> None:
    """`make help` names exactly the scenarios the demo accepts, and the default is one of them."""
    makefile = (REPO / "Makefile").read_text()
    listed = re.search(r"SCENARIO=([a-z0-9|-]+)\)", makefile)
    assert listed is not None
    assert set(listed.group(1).split("|")) == set(SCENARIOS)
    default = re.search(r"^SCENARIO \?= (\S+)", makefile, re.M)
    assert default is not None and default.group(1) in SCENARIOS


def test_demo_config_keeps_known_keys_and_drops_unknown_ones() -> None:
    """Keys the config does not know are dropped (and named); the rest survive and validate."""
    wanted = {"resolve_after_seconds": 5.0, "no_such_key": 1, "host": {"poll_seconds": 5.0, "nope": True}}
    data, dropped = known_keys_only(wanted)
    assert sorted(dropped) == ["host.nope", "no_such_key"]
    settings = settings_from_dict(data)
    assert settings.resolve_after_seconds == 5.0 and settings.host.poll_seconds == 5.0


def test_toml_writer_round_trips() -> None:
    """The demo's TOML writer produces what tomllib reads back."""
    doc = {"a": "x \"q\" \\", "n": 2, "f": 1.5, "b": True, "l": ["p", "q"], "t": {"k": 1, "u": {"v": "w"}}}
    assert tomllib.loads(toml_text(doc)) == doc


def test_marked_processes_are_found_and_ended_by_process_group() -> None:
    """A process carrying the run marker is found in /proc, its group ended, and then not found."""
    import os

    token = secrets.token_hex(6)
    with reaped() as reaper:
        p = reaper.spawn([sys.executable, "-c", "import time; time.sleep(60)"],
                         env={**os.environ, RUN_ENV: token})
        wait_for(lambda: p.pid in processes_with(token), 10, what="marked process")
        assert end_process_groups(processes_with(token)) == []
        p.wait(timeout=10)
        assert processes_with(token) == []


def test_init_view_folds_repeated_image_load_failures() -> None:
    """The demo shows the first failed image load in full and then only a count."""
    view = InitView()
    fatal = 'time="t" level=fatal msg="failed to extract layer sha256:1: operation not permitted: unknown"'
    shown = [view(line) for line in ["unpacking a (sha256:1)...done", "Loaded image: a", fatal,
                                     "unpacking a (sha256:1)...done", "unpacking b (sha256:2)...", fatal, fatal, fatal]]
    assert shown[0] is None and shown[1] is None
    assert shown[2] is not None and "operation not permitted" in shown[2]
    assert shown[3] is None and shown[4] is None
    assert shown[5] is not None and "attempt 2" in shown[5]
    assert shown[7] is None


@pytest.mark.parametrize(
    ("scenario", "doc", "done"),
    [
        ("healthy", {"overall": "healthy", "phase": "ready", "problems": []}, True),
        ("healthy", {"overall": "starting", "phase": "console", "problems": []}, False),
        ("cgroupv2", {"overall": "failed", "problems": [{"id": "k3s.cgroupv2-unsupported"}]}, True),
        ("cgroupv2", {"overall": "failed", "problems": [{"id": "k3s.start-failed"}]}, False),
        ("bind-mount", {"overall": "failed", "problems": [{"id": "images.load-failed"}]}, True),
    ],
)
def test_demo_waits_for_the_scenarios_own_diagnosis(scenario: str, doc: dict, done: bool) -> None:
    """The wait ends on the scenario's problem ids (healthy: overall healthy and phase ready)."""
    assert concluded(doc, SCENARIOS[scenario]) is done
