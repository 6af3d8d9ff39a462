"""The command line as a user meets it: exit statuses, one-sentence errors, both languages."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from watchdog.cli import build_parser, main
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


# ----------------------------------------------------------------------------- as people type it (issue 14)


@pytest.mark.parametrize("argv", [["--config", "{conf}", "status"], ["status", "--config", "{conf}"],
                                  ["--config", "{conf}", "status", "--language", "en"],
                                  ["--language", "en", "status", "--config", "{conf}"]])
def test_global_options_go_before_or_after_the_command(tmp_path: Path, config: Path, argv: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path / "d.json", Overall.FAILED)
    assert main([a.format(conf=config) for a in argv]) == 1
    out = capsys.readouterr().out
    assert "Overall: failed" in out
    assert ("整体状态" in out) is ("--language" not in argv)


def test_a_config_before_the_command_is_not_overwritten_by_the_commands_default(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The packaged default points at /app/status: reaching d.json proves --config was used."""
    monkeypatch.delenv("RAINBOND_WATCHDOG_CONFIG", raising=False)
    write_status(tmp_path / "d.json", Overall.HEALTHY)
    assert main(["--config", str(config), "check"]) == 0
    assert main(["check"]) == 2  # the packaged default: no /app/status here
    assert "/app/status/diagnosis.json" in capsys.readouterr().err


def test_a_bad_language_is_one_sentence(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(config), "--language", "fr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rainbond-watchdog status: --language must list zh and/or en")


def test_watch_does_not_combine_with_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--watch", "--json", "--config", str(config)]) == 2
    assert "--json" in capsys.readouterr().err


def _commands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def test_the_commands_are_the_contracts() -> None:
    assert {"listen", "status", "check", "explain", "rules", "diagnose"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_commands_help_shows_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command the parser has, a later one too: its --help ends with an example of it."""
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    example = out.split("example:\n", 1)[1]
    assert f"rainbond-watchdog {command}" in example
    assert "--config" in out and "--language" in out


def test_diagnose_that_reaches_nothing_cannot_judge_and_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No supervisord, no log, no kubeconfig: say what was tried, not "no problems"."""
    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    conf = tmp_path / "w.toml"
    conf.write_text(f'status_file = "{tmp_path / "d.json"}"\nlog_dir = "{tmp_path / "logs"}"\n'
                    f'supervisor_url = "unix://{tmp_path / "none.sock"}"\n'
                    f'[kubernetes]\nkubeconfig = "{tmp_path / "k3s.yaml"}"\n[host]\npaths = ["{tmp_path}"]\n')
    for extra in ([], ["--json"], ["--write"]):
        assert main(["diagnose", "--config", str(conf), *extra]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        last = captured.err.rstrip("\n").splitlines()[-1]
        assert last.startswith("rainbond-watchdog diagnose: could reach nothing to judge by")
        for tried in (f"unix://{tmp_path / 'none.sock'}", str(tmp_path / "logs" / "k3s.log"), str(tmp_path / "k3s.yaml")):
            assert tried in last
        assert "Traceback" not in captured.err
    assert not (tmp_path / "d.json").exists()  # nothing judged, nothing written
    # One readable log is something to judge by: the answer is a diagnosis again.
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "k3s.log").write_text('level=info msg="Starting k3s"\n')
    assert main(["diagnose", "--config", str(conf)]) == 0
    assert "could reach nothing" not in capsys.readouterr().err
