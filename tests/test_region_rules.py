"""The region rules (conf/region_rules.toml): loaded by default, precise, and quiet on healthy logs."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from watchdog.cli import main
from watchdog.config import default_config_path, load_settings, packaged_conf_dir, rule_paths
from watchdog.diagnosis.rules import RuleBook, load_rule_file

REGION_IDS = {"region.etcd-unreachable", "region.db-unreachable", "region.db-access-denied",
              "region.hub-unreachable", "region.eventlog-unreachable"}

# Lines as Rainbond components print them, other than the rules' own examples.
RECOGNISED = [
    ('time="2026-12-01T03:00:10Z" level=error msg="create etcd.v3 client failed, try time is 10,dial tcp 10.43.4.2:2379: '
     'connect: connection refused"', "region.etcd-unreachable"),
    ('time="2026-12-01T03:00:10Z" level=error msg="create etcd client failure context deadline exceeded, will retry after 3 second"',
     "region.etcd-unreachable"),
    ('time="2026-12-01T03:00:10Z" level=error msg="get db manager failed, try time is 10,dial tcp 10.43.9.9:3306: '
     'connect: connection reset by peer"', "region.db-unreachable"),
    ("time=\"2026-12-01T03:00:10Z\" level=error msg=\"get db manager failed, try time is 10,Error 1045: Access denied "
     "for user 'rbd'@'10.42.0.9' (using password: YES)\"", "region.db-access-denied"),
    ('time="2026-12-01T03:00:10Z" level=error msg="create hub client failed, try time is 10,Get \\"https://goodrain.me/v2/\\": '
     'dial tcp: lookup goodrain.me on 10.43.0.10:53: no such host"', "region.hub-unreachable"),
    ('time="2026-12-01T03:00:10Z" level=error msg="get event manager failed, try time is 4,context deadline exceeded"',
     "region.eventlog-unreachable"),
]
HEALTHY = [
    'time="2026-12-01T03:00:10Z" level=info msg="etcd.v3 client is ready"',
    'time="2026-12-01T03:00:10Z" level=info msg="create etcd.v3 client success"',
    'time="2026-12-01T03:00:10Z" level=info msg="db manager is ready"',
    'time="2026-12-01T03:00:10Z" level=info msg="create hub client success"',
    'time="2026-12-01T03:00:10Z" level=info msg="init event manager success"',
    'time="2026-12-01T03:00:10Z" level=info msg="create etcd client v3 in single mode"',
    # k3s's own etcd/kine timeouts are not the region's etcd
    'time="2026-12-01T03:00:10Z" level=error msg="Failed to get etcd status: context deadline exceeded" endpoint="127.0.0.1:2379"',
]


def test_region_rules_are_in_the_default_rule_files() -> None:
    names = [p.name for p in rule_paths(load_settings())]
    assert names[:4] == ["problems.toml", "rules.toml", "region_rules.toml", "region_dependencies.toml"]
    rules, entries = load_rule_file(packaged_conf_dir() / "region_rules.toml")
    assert {r.id for r in rules} == REGION_IDS and entries == []
    assert all(r.components == ("region",) for r in rules)


def test_every_region_example_matches_its_own_rule_and_no_other_region_rule(rulebook: RuleBook) -> None:
    """Among the rules run over a pod's log (region and host), each example is its own rule's only.

    (``console.db-access-denied`` and ``-unknown-database`` also match MySQL 1045 and 1049 lines: in ``explain``
    without ``--component`` both are reported; the listener runs console rules on console logs only.)
    """
    for rule in rulebook.rules:
        if rule.id in REGION_IDS:
            for example in rule.examples:
                assert [m.rule.id for m in rulebook.match([example], "region")] == [rule.id], example
                others = {m.rule.id for m in rulebook.match([example])} - {rule.id}
                assert others <= {"console.db-access-denied", "console.db-unknown-database"}, example


@pytest.mark.parametrize(("line", "expected"), RECOGNISED)
def test_real_component_lines_raise_their_region_problem(rulebook: RuleBook, line: str, expected: str) -> None:
    assert [m.rule.id for m in rulebook.match([line], "region")] == [expected]


@pytest.mark.parametrize("line", HEALTHY)
def test_healthy_component_lines_raise_nothing(rulebook: RuleBook, line: str) -> None:
    assert [m.rule.id for m in rulebook.match([line]) if m.rule.id in REGION_IDS] == []


def test_every_region_rule_has_both_languages_and_commands(rulebook: RuleBook) -> None:
    for rule in rulebook.rules:
        if rule.id in REGION_IDS:
            assert rule.summary.zh and rule.summary.en
            assert any("`" in step for step in rule.remediation.en) and any("`" in step for step in rule.remediation.zh)


# ------------------------------------------------------------------ the corpus (tests/corpus/region.toml)

CORPUS = Path(__file__).parent / "corpus" / "region.toml"
CASES = tomllib.loads(CORPUS.read_text(encoding="utf-8"))["case"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_explain_over_each_region_corpus_case_reports_exactly_its_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: dict[str, object]
) -> None:
    assert case["component"] == "region" and str(case["source"]).startswith("https://")
    log = tmp_path / "pod.log"
    log.write_text(str(case["text"]), encoding="utf-8")
    code = main(["explain", "--config", str(default_config_path()), "--json", "--component", "region", str(log)])
    ids = sorted(p["id"] for p in json.loads(capsys.readouterr().out)["problems"])
    assert ids == sorted(case["expect"])  # type: ignore[arg-type]
    assert code == (1 if ids else 0)


def test_every_region_rule_has_a_corpus_case_besides_its_examples() -> None:
    covered = {pid for c in CASES for pid in c["expect"]}
    assert REGION_IDS <= covered, REGION_IDS - covered
