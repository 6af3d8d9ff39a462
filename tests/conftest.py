"""Shared fixtures: settings pointing at a temporary tree, the packaged rule book."""
from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from watchdog.config import Settings, load_settings, rule_paths, settings_from_dict
from watchdog.diagnosis.rules import RuleBook, load_rule_files


@pytest.fixture(scope="session")
def rulebook() -> RuleBook:
    return load_rule_files(rule_paths(load_settings()))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "logs").mkdir()
    return settings_from_dict(
        {
            "status_file": str(tmp_path / "status" / "diagnosis.json"),
            "log_dir": str(tmp_path / "logs"),
            "resolve_after_seconds": 30.0,
            "host": {"paths": [str(tmp_path)]},
        },
        source=str(tmp_path / "watchdog.toml"),
    )


@pytest.fixture(autouse=True)
def _reset_logging():  # type: ignore[no-untyped-def]
    """A test that points alerts at its own stream must not leave the next test writing to it."""
    yield
    structlog.reset_defaults()
