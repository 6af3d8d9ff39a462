"""The region's dependency map: loading it, and folding dependents into the problem of what they need."""
from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.config import ConfigError, packaged_conf_dir
from watchdog.diagnosis.dependencies import Cause, Dependency, fold, parse_dependencies
from watchdog.diagnosis.region import crash_cause
from watchdog.diagnosis.rules import RuleBook, load_rule_file, load_rule_files
from watchdog.model import Finding

ETCD = Dependency("rbd-etcd", ("region.etcd-unreachable",), ("rbd-api", "rbd-worker"))
OPERATOR = Dependency("rainbond-operator", creates=("rbd-api", "rbd-etcd"))
API, WORKER, ETCD_POD = "rbd-api-6f6c565856-bq9bp", "rbd-worker-8664fb5d9-zcfw4", "rbd-etcd-0"
ETCD_LINE = 'time="2026-11-30T08:10:06Z" level=error msg="create etcd.v3 client failed, try time is 10,context deadline exceeded"'


def finding(rulebook: RuleBook, pid: str, subject: str, evidence: tuple[str, ...] = ("own evidence",)) -> Finding:
    return rulebook.finding(pid, subject, evidence=evidence, source=f"k8s:pod/{subject}", scope="region:pods")


def etcd_cause(pod: str) -> Cause:
    return Cause(pod, "region.etcd-unreachable", ETCD_LINE, "cannot reach rbd-etcd")


def test_the_shipped_map_loads_and_names_only_shipped_rules(rulebook: RuleBook) -> None:
    comps = {d.component: d for d in rulebook.dependencies}
    assert set(comps) == {"rbd-etcd", "rbd-db", "rbd-hub", "rbd-eventlog", "rainbond-operator"}
    assert "rbd-api" in comps["rbd-etcd"].dependents and "rbd-worker" in comps["rbd-db"].dependents
    ids = {r.id for r in rulebook.rules}
    assert all(pid in ids for d in comps.values() for pid in d.problems)
    assert all(r.components == ("region",) for r in rulebook.rules if r.id in {p for d in comps.values() for p in d.problems})


@pytest.mark.parametrize(("tables", "message"), [
    ([{"problems": ["x.y"]}], "component"),
    ([{"component": "rbd-etcd", "problems": ["region.etcd-unreachable"]}], "dependents"),
    ([{"component": "rbd-etcd", "dependents": ["rbd-etcd"]}], "itself"),
    ([{"component": "rbd-etcd", "dependents": "rbd-api"}], "dependents: expected a list"),
    ([{"component": "rbd-etcd", "needs": []}], "needs: unknown key"),
    ([{"component": "rbd-etcd"}, {"component": "rbd-etcd"}], "twice"),
    ({"component": "rbd-etcd"}, "array of tables"),
])
def test_a_bad_dependency_table_is_refused_naming_file_and_key(tables: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        parse_dependencies(tables, "deps.toml")
    assert str(e.value).startswith("deps.toml: ")


def test_a_dependency_naming_an_unknown_rule_is_refused_at_load(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('[[dependency]]\ncomponent = "rbd-etcd"\nproblems = ["region.no-such"]\ndependents = ["rbd-api"]\n')
    conf = packaged_conf_dir()
    with pytest.raises(ConfigError, match=r"mine.toml: dependency rbd-etcd: problems: 'region.no-such' is in no rule file"):
        load_rule_files([conf / "problems.toml", conf / "rules.toml", conf / "region_rules.toml", f])
    assert load_rule_file(conf / "region_dependencies.toml") == ([], [])


def test_an_operator_file_replaces_one_components_entry(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('[[dependency]]\ncomponent = "rbd-hub"\nproblems = ["region.hub-unreachable"]\ndependents = ["rbd-chaos"]\n')
    conf = packaged_conf_dir()
    book = load_rule_files([conf / "problems.toml", conf / "rules.toml", conf / "region_rules.toml",
                            conf / "region_dependencies.toml", f])
    hub = [d for d in book.dependencies if d.component == "rbd-hub"]
    assert len(hub) == 1 and hub[0].dependents == ("rbd-chaos",) and len(book.dependencies) == 5


def test_dependents_fold_into_the_problem_of_the_component_that_is_down(rulebook: RuleBook) -> None:
    found = [finding(rulebook, "region.pod-crashloop", WORKER), finding(rulebook, "region.pod-pending", ETCD_POD),
             finding(rulebook, "region.pod-crashloop", API)]
    out = fold(found, {API: etcd_cause(API), WORKER: etcd_cause(WORKER)}, [ETCD])
    assert [(f.id, f.subject) for f in out] == [("region.pod-pending", ETCD_POD)]
    ev = out[0].evidence
    assert ev[0] == f"takes down 2 other pod(s): {API}, {WORKER}"
    assert ev[1] == f"{API}: region.pod-crashloop because it cannot reach rbd-etcd: {ETCD_LINE}"
    assert ev[-1] == "own evidence" and len(ev) <= 20
    assert out[0].summary.en.endswith(f"It takes down {API}, {WORKER}.")


def test_when_the_dependency_is_up_the_dependents_keep_their_problems(rulebook: RuleBook) -> None:
    found = [finding(rulebook, "region.pod-crashloop", API), finding(rulebook, "region.pod-crashloop", WORKER)]
    assert fold(found, {API: etcd_cause(API), WORKER: etcd_cause(WORKER)}, [ETCD]) == found


def test_a_dependent_crashing_for_another_reason_is_not_folded(rulebook: RuleBook) -> None:
    found = [finding(rulebook, "region.pod-pending", ETCD_POD), finding(rulebook, "region.pod-crashloop", API),
             finding(rulebook, "region.pod-crashloop", "rbd-gateway-4ss6z")]
    db = Cause(API, "region.db-unreachable", "get db manager failed ...: connection refused")
    out = fold(found, {API: db, "rbd-gateway-4ss6z": etcd_cause("rbd-gateway-4ss6z")}, [ETCD])
    # rbd-api's log blames the database; rbd-gateway is not among this map's dependents.
    assert [(f.id, f.subject) for f in out] == [("region.pod-pending", ETCD_POD), ("region.pod-crashloop", API),
                                                ("region.pod-crashloop", "rbd-gateway-4ss6z")]
    assert out == found


def test_a_missing_dependency_takes_its_dependents_too(rulebook: RuleBook) -> None:
    found = [finding(rulebook, "region.pod-crashloop", API), finding(rulebook, "region.pod-missing", "rbd-etcd")]
    out = fold(found, {API: etcd_cause(API)}, [ETCD])
    assert [(f.id, f.subject) for f in out] == [("region.pod-missing", "rbd-etcd")]
    assert API in out[0].evidence[0]


def test_pods_missing_because_the_operator_is_down_fold_into_its_problem(rulebook: RuleBook) -> None:
    found = [finding(rulebook, "region.pod-crashloop", "rainbond-operator-5f785ff5f6-2dvq6"),
             finding(rulebook, "region.pod-missing", "rbd-api"), finding(rulebook, "region.pod-missing", "rbd-etcd")]
    out = fold(found, {}, [OPERATOR])
    assert [(f.id, f.subject) for f in out] == [("region.pod-crashloop", "rainbond-operator-5f785ff5f6-2dvq6")]
    assert out[0].evidence[:3] == ("takes down 2 other pod(s): rbd-api, rbd-etcd",
                                   "rbd-api: missing, as rainbond-operator creates it",
                                   "rbd-etcd: missing, as rainbond-operator creates it")


def test_many_dependents_are_counted_and_evidence_stays_within_20_lines(rulebook: RuleBook) -> None:
    pods = [f"rbd-api-{i:02d}" for i in range(12)]
    found = [finding(rulebook, "region.pod-pending", ETCD_POD, tuple(f"e{i}" for i in range(20)))]
    found += [finding(rulebook, "region.pod-crashloop", p) for p in pods]
    out = fold(found, {p: etcd_cause(p) for p in pods}, [ETCD])
    assert len(out) == 1 and len(out[0].evidence) == 20
    assert "... and 6 more" in out[0].evidence


def test_crash_cause_is_the_region_rule_of_the_latest_matching_line(rulebook: RuleBook) -> None:
    lines = [
        'time="2026-11-30T08:10:01Z" level=info msg="start api server"',
        ETCD_LINE,
        'time="2026-11-30T08:10:09Z" level=error msg="get db manager failed, try time is 10,dial tcp 10.43.112.9:3306: connect: connection refused"',
        "write /var/lib/x: no space left on device",  # a host rule: not a region cause
    ]
    cause = crash_cause(rulebook, API, lines)
    assert cause is not None and (cause.rule_id, cause.line) == ("region.db-unreachable", lines[2])
    assert crash_cause(rulebook, API, lines[:2]) == Cause(API, "region.etcd-unreachable", ETCD_LINE,
                                                          rulebook.texts("region.etcd-unreachable")[2].en)
    assert crash_cause(rulebook, API, [lines[0], lines[3]]) is None
    assert crash_cause(rulebook, API, []) is None


def test_region_rules_run_only_for_the_region_and_in_explain(rulebook: RuleBook) -> None:
    assert not any(m.rule.components == ("region",) for m in rulebook.match([ETCD_LINE], "k3s"))
    assert [m.rule.id for m in rulebook.match([ETCD_LINE], "region")] == ["region.etcd-unreachable"]
    assert [m.rule.id for m in rulebook.match([ETCD_LINE])] == ["region.etcd-unreachable"]


def test_folded_evidence_lines_keep_the_500_character_bound(rulebook: RuleBook) -> None:
    long_line = "create etcd.v3 client failed, try time is 10," + "x" * 480
    found = [finding(rulebook, "region.pod-pending", ETCD_POD), finding(rulebook, "region.pod-crashloop", API)]
    out = fold(found, {API: Cause(API, "region.etcd-unreachable", long_line)}, [ETCD])
    assert max(len(line) for line in out[0].evidence) == 500 and out[0].evidence[1].endswith("…")
