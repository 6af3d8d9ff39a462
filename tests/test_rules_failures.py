"""The rules on the listener's failure path: a specific cause replaces the generic start-failed."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.diagnosis.processes import failure_findings
from watchdog.diagnosis.rules import RuleBook, bound_evidence
from watchdog.model import LogTail, Severity

CONTAINERD_REFUSED = [
    'time="2026-11-30T01:05:13Z" level=info msg="starting containerd" revision="1.6.20~ds1" version="1.6.20~ds1"',
    'containerd: failed to load TOML from /etc/containerd/config.toml: invalid plugin key URI "cri" expect io.containerd.x.vx',
]
CONTAINERD_HEALTHY_THEN_KILLED = [
    'time="2026-11-30T01:05:13Z" level=warning msg="failed to load plugin io.containerd.snapshotter.v1.devmapper" '
    'error="devmapper not configured"',
    'time="2026-11-30T01:05:13Z" level=error msg="failed to load cni during init, please check CRI plugin status before '
    'setting up network for pods" error="cni config load failed: no network config found in /etc/cni/net.d"',
    'time="2026-11-30T01:05:13Z" level=info msg="containerd successfully booted in 0.018575s"',
]


def _ids(findings: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(f.id for f in findings)


def test_refused_config_is_the_cause_not_start_failed(rulebook: RuleBook) -> None:
    tail = LogTail("/app/logs/containerd.log", tuple(CONTAINERD_REFUSED))
    found = failure_findings(rulebook, "containerd", "containerd", "FATAL", None, [tail])
    assert _ids(found) == ["containerd.config-invalid"]
    [f] = found
    assert f.subject == "containerd" and f.source == "/app/logs/containerd.log"
    assert f.evidence[-1] == CONTAINERD_REFUSED[-1]


def test_healthy_looking_log_keeps_the_generic_problem(rulebook: RuleBook) -> None:
    """containerd's cni `level=error` line at start is no cause: the failure stays start-failed."""
    tail = LogTail("/app/logs/containerd.log", tuple(CONTAINERD_HEALTHY_THEN_KILLED))
    found = failure_findings(rulebook, "containerd", "containerd", "EXITED", None, [tail])
    assert _ids(found) == ["containerd.start-failed"]


def test_several_causes_are_raised_together(rulebook: RuleBook) -> None:
    lines = (
        'time="2026-11-30T01:00:00Z" level=error msg="Failed to set sysctl: open /proc/sys/net/netfilter/nf_conntrack_max: '
        'permission denied"',
        'time="2026-11-30T01:00:01Z" level=fatal msg="failed to find memory cgroup (v2)"',
    )
    found = failure_findings(rulebook, "k3s", "k3s", "BACKOFF", None, [LogTail("/app/logs/k3s.log", lines)])
    assert _ids(found) == ["k3s.conntrack-permission-denied", "k3s.memory-cgroup-missing"]


def test_a_warning_alone_does_not_replace_the_generic_problem(rulebook: RuleBook) -> None:
    lines = ('E1130 01:00:00.000000 59 proxier.go:1521] "Failed to execute iptables-restore" err="exit status 1"',
             "level=info msg=bye")
    found = failure_findings(rulebook, "k3s", "k3s", "FATAL", None, [LogTail("/app/logs/k3s.log", lines)])
    assert _ids(found) == ["k3s.iptables-failed", "k3s.start-failed"]
    assert {f.id: f.severity for f in found}["k3s.iptables-failed"] is Severity.WARNING


def test_console_database_cause_from_the_error_log(rulebook: RuleBook) -> None:
    tails = [
        LogTail("/app/logs/console.log", ("[2026-11-30 01:00:00 +0800] [7] [INFO] Starting gunicorn 20.1.0",)),
        LogTail("/app/logs/console_error.log", (
            "Traceback (most recent call last):",
            """django.db.utils.OperationalError: (1045, "Access denied for user 'root'@'127.0.0.1' (using password: YES)")""",
        )),
    ]
    found = failure_findings(rulebook, "console", "console", "FATAL", None, tails)
    assert _ids(found) == ["console.db-access-denied"]
    assert found[0].source == "/app/logs/console_error.log"


def test_evidence_drops_terminal_colour_codes() -> None:
    line = "\x1b[31m2026-11-30 01:00:00 ERROR: Containerd failed to start.\x1b[0m"
    assert bound_evidence([line]) == ("2026-11-30 01:00:00 ERROR: Containerd failed to start.",)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
       component=st.sampled_from([None, "containerd", "images", "k3s", "console"]))
def test_prefiltered_match_equals_every_rule_on_every_line(rulebook: RuleBook, picks: list[int], component: str | None) -> None:
    """The anchor pre-filter of RuleBook.match never changes its answer (Unicode that lower() lengthens included)."""
    pool = [e for r in rulebook.rules for e in r.examples] + ["", "İstanbul İİ no space left on device", "level=info msg=ok"]
    lines = [pool[p % len(pool)] for p in picks]
    expected = [(r.id, tuple(i for i, line in enumerate(lines) if r.matches(line))) for r in rulebook.for_component(component)]
    assert [(m.rule.id, m.line_numbers) for m in rulebook.match(lines, component)] == [e for e in expected if e[1]]
