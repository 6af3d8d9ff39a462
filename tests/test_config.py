"""Settings: defaults, partial files, refusal with file, key and reason."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from watchdog.config import ConfigError, Settings, load_settings, packaged_conf_dir, settings_from_dict


def test_packaged_config_equals_the_promised_defaults() -> None:
    """conf/watchdog.toml documents exactly the dataclass defaults (one test pins them all)."""
    loaded = load_settings(packaged_conf_dir() / "watchdog.toml")
    assert dataclasses.replace(loaded, config_path="") == Settings()


def test_contract_defaults() -> None:
    s = Settings()
    assert (s.status_file, s.log_dir, s.language) == ("/app/status/diagnosis.json", "/app/logs", "zh,en")
    assert s.programs["containerd"].logs == ("containerd.log",)
    assert s.programs["k3s"].logs == ("k3s.log",)
    assert s.programs["console"].logs == ("console.log", "console_error.log")
    assert s.kubernetes.namespace == "rbd-system"
    assert "/app/data" in s.host.paths
    assert s.rules[0] == "rules.toml"
    assert (s.alert_format, s.alert_color) == ("text", "auto")
    assert s.layout == "auto" and s.host.data_dir == "/app/data"


def test_every_key_of_the_packaged_file_is_known() -> None:
    with open(packaged_conf_dir() / "watchdog.toml", "rb") as fh:
        data = tomllib.load(fh)
    settings_from_dict(data)  # raises on any unknown key


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    f = tmp_path / "w.toml"
    f.write_text('log_dir = "/tmp/x"\n[programs.k3s]\nlogs = ["k3s-a.log"]\n[kubernetes]\npoll_seconds = 3\n')
    s = load_settings(f)
    assert s.log_dir == "/tmp/x" and s.status_file == Settings().status_file
    assert s.programs["k3s"].logs == ("k3s-a.log",) and s.programs["k3s"].program == "k3s"
    assert s.programs["containerd"] == Settings().programs["containerd"]
    assert s.kubernetes.poll_seconds == 3.0 and s.kubernetes.namespace == "rbd-system"
    assert s.config_path == str(f)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("status_fil = 'x'", "status_fil"),
        ("tail_lines = 'many'", "tail_lines"),
        ("tail_lines = 0", "tail_lines"),
        ("language = 'fr'", "language"),
        ("alert_format = 'xml'", "alert_format"),
        ("alert_color = 'yes'", "alert_color"),
        ("layout = 'docker'", "layout"),
        ("layout = 3", "layout"),
        ("[kubernetes]\npoll_seconds = -1", "kubernetes.poll_seconds"),
        ("[kubernetes]\nexpected_pods = 'rbd-api'", "kubernetes.expected_pods"),
        ("[programs.etcd]\nprogram = 'etcd'\nlogs = []", "programs.etcd"),
        ("[host]\ndisk_low_percent = 120", "host.disk_low_percent"),
        ("rules = [", None),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path: Path, text: str, key: str | None) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    assert str(f) in str(e.value)
    if key:
        assert f": {key}" in str(e.value)


@pytest.mark.parametrize("layout", ["auto", "dockerd", "containerd", "embedded"])
def test_every_layout_is_accepted(tmp_path: Path, layout: str) -> None:
    f = tmp_path / "w.toml"
    f.write_text(f'layout = "{layout}"\n')
    assert load_settings(f).layout == layout


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_environment_variable_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "env.toml"
    f.write_text('log_dir = "/from/env"\n')
    monkeypatch.setenv("RAINBOND_WATCHDOG_CONFIG", str(f))
    assert load_settings().log_dir == "/from/env"
