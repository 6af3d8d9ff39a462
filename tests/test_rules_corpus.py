"""The log corpus (tests/corpus/*.toml): real public excerpts through `explain`, and every rule covered."""
from __future__ import annotations

import argparse
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from watchdog.app import load_rulebook
from watchdog.cli import build_parser, main
from watchdog.config import default_config_path, load_settings
from watchdog.diagnosis.rules import RuleBook, evidence_for

CORPUS = Path(__file__).parent / "corpus"
CASE_KEYS = {"name", "source", "component", "expect", "text", "note"}
URL = re.compile(r"^https://\S+$")


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    component: str
    expect: tuple[str, ...]
    text: str
    file: str


def _explain_components() -> set[str]:
    """The values `explain --component` accepts (taken from the CLI, so new components count)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    explain = sub.choices["explain"]
    [component] = [a for a in explain._actions if "--component" in a.option_strings]
    return set(component.choices or ())


def _load_corpus() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for table in data.get("case", []):
            unknown = set(table) - CASE_KEYS
            assert not unknown, f"{path.name}: {table.get('name')}: unknown keys {sorted(unknown)}"
            cases.append(Case(table["name"], table["source"], table["component"], tuple(table["expect"]),
                              table["text"], path.name))
    return cases


CASES = _load_corpus()


@pytest.fixture(scope="module")
def rules_in_force() -> RuleBook:
    """The rules `explain` uses with the packaged configuration (every rule file it lists)."""
    return load_rulebook(load_settings(default_config_path()))


def _explain(tmp_path: Path, case: Case, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]]]:
    log = tmp_path / f"{case.name}.log"
    log.write_text(case.text, encoding="utf-8")
    code = main(["explain", "--config", str(default_config_path()), "--json", "--component", case.component, str(log)])
    return code, json.loads(capsys.readouterr().out)["problems"]


def test_corpus_is_large_and_well_formed() -> None:
    """Every case names a public source, a component explain accepts, and text; names are unique."""
    assert len(CASES) >= 80
    components = _explain_components()
    assert {"containerd", "images", "k3s", "console"} <= components
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in CASES:
        assert URL.match(case.source), f"{case.name}: source must be an https URL"
        assert case.component in components, f"{case.name}: component {case.component!r}"
        assert case.text.strip(), f"{case.name}: empty text"
        assert len(case.expect) == len(set(case.expect)), f"{case.name}: duplicate ids"
    assert sum(1 for c in CASES if not c.expect) >= 10, "the corpus needs healthy logs too"


def test_every_expected_id_is_a_rule_in_force(rules_in_force: RuleBook) -> None:
    ids = {r.id for r in rules_in_force.rules}
    unknown = sorted({(c.name, i) for c in CASES for i in c.expect if i not in ids})
    assert unknown == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_explain_reports_exactly_the_expected_problems(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real CLI path: `explain --json --component C FILE` finds these ids and no others."""
    code, problems = _explain(tmp_path, case, capsys)
    assert sorted(str(p["id"]) for p in problems) == sorted(case.expect)
    assert code == (1 if case.expect else 0)
    if not case.expect:
        assert not [p for p in problems if p["severity"] == "error"]


def test_every_rule_has_a_corpus_case_besides_its_examples(rules_in_force: RuleBook) -> None:
    """Each rule is proven on public text: a case expects it whose text is not just its own examples."""
    missing = []
    for rule in rules_in_force.rules:
        own = {e.strip() for e in rule.examples}
        cases = [c for c in CASES if rule.id in c.expect]
        if not any({line.strip() for line in c.text.splitlines() if line.strip()} - own for c in cases):
            missing.append(rule.id)
    assert missing == []


def test_traceback_evidence_quotes_the_exception_line_not_the_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 16-line traceback: the evidence is the exception line with one line of context, nothing more."""
    case = next(c for c in CASES if c.name == "seosnap-3-traceback-mysql-refused")
    _, [problem] = _explain(tmp_path, case, capsys)
    evidence = [str(line) for line in problem["evidence"]]  # type: ignore[attr-defined]
    assert any("MySQLdb._exceptions.OperationalError: (2002" in line for line in evidence)
    assert not any("Traceback (most recent call last)" in line for line in evidence)
    assert len(evidence) <= 3


def test_listener_evidence_of_a_traceback_is_the_exception_line(rules_in_force: RuleBook) -> None:
    """The listener's failure path (match + evidence_for) quotes the same lines as explain."""
    case = next(c for c in CASES if c.name == "dmoj-1929-migrate-traceback")
    lines = case.text.splitlines()
    [match] = rules_in_force.match(lines, "console")
    assert match.rule.id == "console.python-exception"
    evidence = evidence_for(lines, match.line_numbers)
    assert evidence[-1] == 'django.db.utils.OperationalError: near "INNER": syntax error'
    assert len(evidence) == 2  # the last frame's code line, then the exception line
    assert not any(line.lstrip().startswith("File ") for line in evidence)


def test_generic_exception_rule_yields_to_the_specific_ones(rules_in_force: RuleBook) -> None:
    """console.python-exception never fires on a line a more specific rule explains."""
    generic = rules_in_force.rule("console.python-exception")
    assert generic is not None
    for rule in rules_in_force.rules:
        if rule is generic:
            continue
        for example in rule.examples:
            assert not generic.matches(example), f"{rule.id}: {example!r}"
    for case in CASES:
        if "console.python-exception" in case.expect:
            assert len(case.expect) == 1


def test_clock_skew_and_expiry_are_told_apart(rules_in_force: RuleBook) -> None:
    """Same x509 words, two causes: "is before" is the clock, "is after" (or no time) is expiry."""
    before = ('x509: certificate has expired or is not yet valid: current time 2022-07-22T18:55:59+12:00 '
              'is before 2022-07-22T07:45:55Z')
    after = before.replace(" is before ", " is after ")
    assert [m.rule.id for m in rules_in_force.match([before])] == ["k3s.clock-skew"]
    assert [m.rule.id for m in rules_in_force.match([after])] == ["k3s.certificate-expired"]
