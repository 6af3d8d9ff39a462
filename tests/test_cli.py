"""The command line as a user meets it: exit statuses, one-sentence errors, both languages."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from watchdog.cli import main
from watchdog.model import HostView, Overall, ProcessView, RegionView
from watchdog.sinks.status_file import Snapshot, dumps, render, write_atomic


def write_status(path: Path, overall: Overall, at: float | None = None) -> None:
    t = time.time() if at is None else at
    snap = Snapshot(t, "0.1.0", 1, t, overall, "k3s", {"k3s": ProcessView("FATAL", t)}, RegionView(), HostView(), {}, (), ())
    write_atomic(str(path), dumps(render(snap)))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    conf = tmp_path / "w.toml"
    conf.write_text(f'status_file = "{tmp_path / "d.json"}"\n')
    return conf


@pytest.mark.parametrize(("overall", "code"), [(Overall.HEALTHY, 0), (Overall.STARTING, 0),
                                               (Overall.DEGRADED, 1), (Overall.FAILED, 1)])
def test_status_and_check_exit_by_overall(tmp_path: Path, config: Path, overall: Overall, code: int,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path / "d.json", overall)
    assert main(["status", "--config", str(config)]) == code
    text = capsys.readouterr().out
    assert "整体状态" in text and "Overall" in text
    assert main(["check", "--config", str(config)]) == code
    assert capsys.readouterr().out == ""


def test_status_json_prints_the_file(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path / "d.json", Overall.FAILED)
    assert main(["status", "--json", "--config", str(config)]) == 1
    assert json.loads(capsys.readouterr().out)["overall"] == "failed"


@pytest.mark.parametrize("content", [None, "{broken", "stale"])
def test_no_usable_status_exits_2_with_one_sentence(tmp_path: Path, config: Path, content: str | None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.json"
    if content == "stale":
        write_status(path, Overall.HEALTHY, at=time.time() - 3600)
    elif content is not None:
        path.write_text(content)
    for cmd in ("status", "check"):
        assert main([cmd, "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and err.startswith(f"rainbond-watchdog {cmd}: ")


def test_invalid_config_is_refused_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text("stale_seconds = 0\n")
    assert main(["status", "--config", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "stale_seconds" in err and str(conf) in err


def test_file_option_overrides_the_config(tmp_path: Path, config: Path) -> None:
    other = tmp_path / "other.json"
    write_status(other, Overall.HEALTHY)
    assert main(["check", "--config", str(config), "--file", str(other)]) == 0
