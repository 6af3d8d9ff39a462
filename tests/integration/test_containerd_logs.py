"""The rules against what the real containerd prints: healthy start, refused configs, a bad socket path.

Every log asserted on here was produced by /usr/bin/containerd in this very test run.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import reaped, wait_for
from tests.integration.containerd_env import require_containerd, write_config
from tests.integration.supervisor_env import Program, Supervisor
from watchdog.diagnosis.rules import RuleBook
from watchdog.diagnosis.scanning import Scanner
from watchdog.model import Severity

pytestmark = [pytest.mark.integration]


def _run_refused(containerd: str, conf: Path) -> list[str]:
    """containerd with a config it refuses: it must exit by itself; its output, line by line."""
    r = subprocess.run([containerd, "--config", str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, "containerd accepted a config it should refuse"
    return (r.stdout + r.stderr).splitlines()


def _ids(rulebook: RuleBook, lines: list[str], severity: Severity | None = None) -> set[str]:
    found = {m.rule.id for m in rulebook.match(lines, "containerd") if severity is None or m.rule.severity is severity}
    sc = Scanner(rulebook.for_component("containerd"))
    sc.feed_lines(lines)
    streamed = {h.rule.id for h in sc.hits() if severity is None or h.rule.severity is severity}
    assert streamed == found, "the streaming scanner and the listener's matcher disagree"
    return found


def test_healthy_start_raises_nothing_of_severity_error(tmp_path: Path, rulebook: RuleBook) -> None:
    """The real start-up log (with its `level=error` cni line) is not a problem."""
    containerd = require_containerd()
    log = tmp_path / "containerd.log"
    conf = write_config(tmp_path / "c")
    with reaped() as reaper, open(log, "wb") as out:
        reaper.spawn([containerd, "--config", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "successfully booted" in log.read_text(errors="replace"), 30, what="containerd booted")
    lines = log.read_text(errors="replace").splitlines()
    if not any(Path("/etc/cni/net.d").glob("*.conf*")):
        # No CNI config: containerd logs its cni complaint at level=error, the case that matters.
        assert any("failed to load cni during init" in line for line in lines)
    assert _ids(rulebook, lines, Severity.ERROR) == set()


def test_toml_syntax_error_is_config_invalid(tmp_path: Path, rulebook: RuleBook) -> None:
    containerd = require_containerd()
    conf = write_config(tmp_path / "c")
    conf.write_text(conf.read_text().replace("[grpc]", "[grpc"))
    lines = _run_refused(containerd, conf)
    assert _ids(rulebook, lines, Severity.ERROR) == {"containerd.config-invalid"}


def test_short_plugin_key_is_rejected_as_config_invalid(tmp_path: Path, rulebook: RuleBook) -> None:
    """containerd 1.6 rejects a plugin table that is not a full URI (version 2 configs)."""
    containerd = require_containerd()
    conf = write_config(tmp_path / "c", extra='[plugins."cri"]\n  sandbox_image = "pause:3.6"\n')
    lines = _run_refused(containerd, conf)
    assert any("invalid plugin key" in line for line in lines)
    assert _ids(rulebook, lines, Severity.ERROR) == {"containerd.config-invalid"}


def test_wrong_value_type_is_config_invalid(tmp_path: Path, rulebook: RuleBook) -> None:
    containerd = require_containerd()
    conf = write_config(tmp_path / "c")
    conf.write_text(conf.read_text().split("[grpc]")[0] + "[grpc]\n  address = 5\n")
    lines = _run_refused(containerd, conf)
    assert _ids(rulebook, lines, Severity.ERROR) == {"containerd.config-invalid"}


def test_socket_path_that_is_a_directory_is_socket_in_use(tmp_path: Path, rulebook: RuleBook) -> None:
    containerd = require_containerd()
    sock = tmp_path / "run" / "containerd.sock"
    sock.mkdir(parents=True)
    (sock / "keep").write_text("a directory that is not empty cannot be replaced by a socket")
    conf = write_config(tmp_path / "c", socket=sock)
    lines = _run_refused(containerd, conf)
    assert _ids(rulebook, lines, Severity.ERROR) == {"containerd.socket-in-use"}


def test_socket_folder_that_is_a_file_is_socket_in_use(tmp_path: Path, rulebook: RuleBook) -> None:
    containerd = require_containerd()
    (tmp_path / "run").write_text("a file where the run folder should be")
    conf = write_config(tmp_path / "c", socket=tmp_path / "run" / "containerd.sock")
    lines = _run_refused(containerd, conf)
    assert _ids(rulebook, lines, Severity.ERROR) == {"containerd.socket-in-use"}


def _status(sup: Supervisor) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads(sup.status_file.read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.mark.slow
def test_fatal_containerd_with_a_broken_config_shows_config_invalid(tmp_path: Path) -> None:
    """Under a real supervisord: containerd goes FATAL; the status file names the cause, not start-failed."""
    containerd = require_containerd()
    conf = write_config(tmp_path / "c", extra='[plugins."cri"]\n  sandbox_image = "pause:3.6"\n')
    with reaped() as reaper:
        sup = Supervisor(
            tmp_path, reaper,
            [Program("containerd", f"{containerd} --config {conf}", str(tmp_path / "logs" / "containerd.log"),
                     {"startretries": "1"})],
            {},
        )
        try:
            sup.start()
            wait_for(lambda: sup.state("containerd") == "FATAL", 30, what="containerd FATAL")
            doc = wait_for(
                lambda: (d := _status(sup)) and any(p["subject"] == "containerd" for p in d.get("problems", [])) and d,
                30, what="a containerd problem in the status file",
            )
            ids = {p["id"] for p in doc["problems"] if p["subject"] == "containerd"}
            assert "containerd.config-invalid" in ids
            assert "containerd.start-failed" not in ids
            problem = next(p for p in doc["problems"] if p["id"] == "containerd.config-invalid")
            assert any("invalid plugin key" in e for e in problem["evidence"])
            assert problem["source"].endswith("containerd.log")
        finally:
            sup.stop()
