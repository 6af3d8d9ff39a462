"""Catalog texts: placeholders are filled, every other brace is left as written."""
from __future__ import annotations

from watchdog.diagnosis.rules import RuleBook


def test_go_templates_in_remediation_survive_filling(rulebook: RuleBook) -> None:
    f = rulebook.finding("images.bind-mount-storage", "init")
    assert any("'{{json .Mounts}}'" in step for step in f.remediation.en)


def test_placeholders_are_filled_and_unknown_ones_kept(rulebook: RuleBook) -> None:
    f = rulebook.finding("process.flapping", "k3s", details={"starts": "7", "window": "120"})
    assert "k3s started 7 times in 120 s" in f.summary.en
    g = rulebook.finding("process.flapping", "k3s")
    assert "{starts}" in g.summary.en  # a missing value is visible, not silently empty
