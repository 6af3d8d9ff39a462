"""Privileges from /proc/self/status, host.not-privileged, and one "operation not permitted" line
decided three ways with the host facts the listener has."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.helpers import frame, tick_frame
from tests.test_app import Clock, feed
from watchdog.app import Monitor
from watchdog.config import HostSettings, Settings
from watchdog.diagnosis.host import (
    host_findings,
    is_privileged,
    lacks_essentials,
    privilege_findings,
    with_host_facts,
)
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import Capabilities, HostSample, Mount, PathUsage, Severity
from watchdog.sources.host import HostReader, parse_capabilities

# An unprivileged `docker run` (Docker's default capability set), as /proc/self/status shows it.
UNPRIVILEGED_STATUS = """Name:\tpython3
Umask:\t0022
State:\tS (sleeping)
Uid:\t0\t0\t0\t0
CapInh:\t0000000000000000
CapPrm:\t00000000a80425fb
CapEff:\t00000000a80425fb
CapBnd:\t00000000a80425fb
CapAmb:\t0000000000000000
NoNewPrivs:\t0
"""
# `docker run --privileged` on a 5.9+ kernel (41 capabilities).
PRIVILEGED_STATUS = UNPRIVILEGED_STATUS.replace("00000000a80425fb", "000001ffffffffff")
# A non-root process in a privileged container: nothing effective, the bounding set full.
NON_ROOT_PRIVILEGED_STATUS = PRIVILEGED_STATUS.replace("CapEff:\t000001ffffffffff", "CapEff:\t0000000000000000")

MOUNT_LINE = ('time="2026-11-30T08:12:44+08:00" level=fatal msg="failed to extract layer sha256:4fc2: failed to mount '
              '/app/data/containerd/tmpmounts/containerd-mount2896125893: operation not permitted: unknown"')
SYSCTL_LINE = ('time="2026-11-30T08:12:44Z" level=error msg="Failed to set sysctl: open '
               '/proc/sys/net/netfilter/nf_conntrack_max: operation not permitted"')
HS = HostSettings()
VOLUME = (Mount("/", "overlay", "overlay"), Mount("/app/data", "ext4", "/dev/sda1"))
DESKTOP_SHARE = (Mount("/", "overlay", "overlay"), Mount("/app/data", "fakeowner", "/run/host_mark/Users"))


def caps(status: str) -> Capabilities:
    parsed = parse_capabilities(status, "40\n")
    assert parsed is not None
    return parsed


def sample(status: str | None, mounts: tuple[Mount, ...] = VOLUME) -> HostSample:
    return HostSample(mounts=mounts, capabilities=None if status is None else caps(status))


def log_finding(rulebook: RuleBook, line: str) -> tuple[str, ...]:
    """The rule the listener matches for ``line`` (as the failure path does): its id."""
    hits = rulebook.match([line])
    assert len(hits) == 1, [m.rule.id for m in hits]
    return (hits[0].rule.id,)


def decide(rulebook: RuleBook, line: str, host: HostSample | None) -> tuple[str, str, tuple[str, ...]]:
    (rule_id,) = log_finding(rulebook, line)
    f = rulebook.finding(rule_id, "init", evidence=[line], source="program:init", scope="process:init")
    (out,) = with_host_facts(rulebook, [f], host, HS)
    assert out.scope == "process:init" and out.subject == "init" and line in out.evidence
    return out.id, out.component, out.evidence


# ------------------------------------------------------------------ reading the capabilities


def test_capabilities_parse_from_this_process_real_status() -> None:
    text = Path("/proc/self/status").read_text()
    parsed = parse_capabilities(text, Path("/proc/sys/kernel/cap_last_cap").read_text())
    assert parsed is not None
    assert parsed.effective == int(re.search(r"^CapEff:\s*([0-9a-f]+)$", text, re.M).group(1), 16)  # type: ignore[union-attr]
    assert parsed.bounding == int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", text, re.M).group(1), 16)  # type: ignore[union-attr]
    assert parsed.last_cap is not None and parsed.last_cap >= 37


def test_host_reader_reads_the_capabilities_through_its_reader() -> None:
    files = {"/proc/self/status": UNPRIVILEGED_STATUS, "/proc/sys/kernel/cap_last_cap": "40\n",
             "/proc/self/mounts": "overlay / overlay rw 0 0\n"}

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    got = HostReader(read).sample([])
    assert got.capabilities == Capabilities(effective=0xA80425FB, bounding=0xA80425FB, last_cap=40)


def test_unreadable_status_is_a_note_and_no_capabilities() -> None:
    def read(path: str) -> str:
        if path == "/proc/self/status":
            raise PermissionError(13, "Permission denied")
        return ""

    got = HostReader(read).sample([])
    assert got.capabilities is None and any("capabilities" in n for n in got.notes)


@pytest.mark.parametrize("text", ["", "Name:\tx\n", "CapEff:\tnot-hex\n"])
def test_a_status_without_a_readable_capeff_gives_none(text: str) -> None:
    assert parse_capabilities(text) is None


def test_full_set_is_privileged_docker_default_is_not() -> None:
    assert is_privileged(caps(PRIVILEGED_STATUS)) and not lacks_essentials(caps(PRIVILEGED_STATUS))
    assert not is_privileged(caps(UNPRIVILEGED_STATUS)) and lacks_essentials(caps(UNPRIVILEGED_STATUS))
    # A listener run as a non-root user is judged on the bounding set, not its empty effective one.
    assert is_privileged(caps(NON_ROOT_PRIVILEGED_STATUS))


def test_a_set_missing_only_a_non_essential_capability_is_not_raised(rulebook: RuleBook) -> None:
    almost = Capabilities(effective=0x1FFFEFFFFFF, bounding=0x1FFFEFFFFFF, last_cap=40)  # no CAP_SYS_RESOURCE
    assert not is_privileged(almost) and not lacks_essentials(almost)
    assert privilege_findings(rulebook, HostSample(capabilities=almost)) == []


# ------------------------------------------------------------------ host.not-privileged


def test_unprivileged_container_raises_host_not_privileged_with_the_missing_capabilities(rulebook: RuleBook) -> None:
    found = [f for f in host_findings(rulebook, sample(UNPRIVILEGED_STATUS), HS) if f.id == "host.not-privileged"]
    assert len(found) == 1
    f = found[0]
    assert f.severity is Severity.ERROR and f.component == "host" and f.subject == "container"
    assert f.source == "host:/proc/self/status"
    assert any("00000000a80425fb" in line for line in f.evidence)
    assert any("CAP_SYS_ADMIN" in line and "CAP_NET_ADMIN" in line for line in f.evidence)
    assert "--privileged" in f.summary.en and "--privileged" in f.summary.zh
    assert any("--privileged" in step for step in f.remediation.en)


@pytest.mark.parametrize("status", [PRIVILEGED_STATUS, NON_ROOT_PRIVILEGED_STATUS, None])
def test_privileged_or_unknown_raises_nothing(rulebook: RuleBook, status: str | None) -> None:
    assert not [f for f in host_findings(rulebook, sample(status), HS) if f.id == "host.not-privileged"]


# ------------------------------------------------------------------ one line, three causes


def test_mount_denied_in_an_unprivileged_container_is_not_privileged(rulebook: RuleBook) -> None:
    pid, comp, evidence = decide(rulebook, MOUNT_LINE, sample(UNPRIVILEGED_STATUS, DESKTOP_SHARE))
    assert (pid, comp) == ("host.not-privileged", "host")
    assert any("CAP_SYS_ADMIN" in line for line in evidence)


def test_mount_denied_on_a_docker_desktop_share_is_bind_mount_storage(rulebook: RuleBook) -> None:
    pid, comp, evidence = decide(rulebook, MOUNT_LINE, sample(PRIVILEGED_STATUS, DESKTOP_SHARE))
    assert (pid, comp) == ("images.bind-mount-storage", "images")
    assert any("fakeowner" in line for line in evidence)


def test_mount_denied_otherwise_is_the_load_failure(rulebook: RuleBook) -> None:
    pid, comp, evidence = decide(rulebook, MOUNT_LINE, sample(PRIVILEGED_STATUS, VOLUME))
    assert (pid, comp) == ("images.load-failed", "images")
    assert any("not a host share" in line for line in evidence)


def test_sysctl_denied_in_an_unprivileged_container_is_not_privileged(rulebook: RuleBook) -> None:
    assert decide(rulebook, SYSCTL_LINE, sample(UNPRIVILEGED_STATUS))[0] == "host.not-privileged"


def test_sysctl_denied_when_privileged_keeps_its_own_rule(rulebook: RuleBook) -> None:
    (rule_id,) = log_finding(rulebook, SYSCTL_LINE)
    assert decide(rulebook, SYSCTL_LINE, sample(PRIVILEGED_STATUS, DESKTOP_SHARE))[0] == rule_id


def test_without_host_facts_the_rules_answer_stands(rulebook: RuleBook) -> None:
    """``explain`` (offline) and the listener before its first host sample."""
    assert decide(rulebook, MOUNT_LINE, None)[0] == "images.bind-mount-storage"


def test_unrelated_findings_pass_through_unchanged(rulebook: RuleBook) -> None:
    line = 'time="2026-11-30T08:12:47Z" level=fatal msg="listen tcp 0.0.0.0:6443: bind: address already in use"'
    f = rulebook.finding(log_finding(rulebook, line)[0], "k3s", evidence=[line], scope="process:k3s")
    assert with_host_facts(rulebook, [f], sample(UNPRIVILEGED_STATUS, DESKTOP_SHARE), HS) == [f]


# ------------------------------------------------------------------ in the listener


@pytest.mark.parametrize(("status", "fstype", "expected"), [
    (UNPRIVILEGED_STATUS, "ext4", "host.not-privileged"),
    (PRIVILEGED_STATUS, "fakeowner", "images.bind-mount-storage"),
    (PRIVILEGED_STATUS, "ext4", "images.load-failed"),
])
def test_the_listener_decides_the_init_programs_mount_failure_with_its_host_sample(
    settings: Settings, rulebook: RuleBook, tmp_path: Path, status: str, fstype: str, expected: str
) -> None:
    """The init program prints the mount denial (PROCESS_LOG); the host sample decides its problem."""
    data = str(tmp_path / "data")
    s = dataclasses.replace(settings, host=dataclasses.replace(settings.host, paths=(data,), data_dir=data))
    host = HostSample(paths={data: PathUsage(90 * 2**30, 45.0, 50.0)}, mounts=(Mount("/", "overlay"), Mount(data, fstype)),
                      capabilities=caps(status))
    clock = Clock()
    mon = Monitor(s, rulebook, clock=clock, host_sampler=lambda: host)
    feed(mon, tick_frame(1, 1))
    assert mon.wait_background(10)
    clock.t += 5
    feed(mon, tick_frame(2, 2))
    feed(mon, frame("PROCESS_LOG_STDOUT", f"processname:init groupname:init pid:42 channel:stdout\n{MOUNT_LINE}\n", 3))
    from_log = {k for k, p in mon.book.active.items() if k[1] == "init"}
    assert from_log == {(expected, "init")}
    assert any(MOUNT_LINE[:60] in line for line in mon.book.active[(expected, "init")].finding.evidence)


def test_diagnose_reads_the_host_before_the_logs_so_a_mount_denial_is_decided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diagnose` outside supervisord: the mount denial in containerd.log is decided with this
    machine's real capabilities (on a volume, not a host share: the load failure when privileged)."""
    import json

    import structlog

    from tests.test_region_diagnose import write_config
    from watchdog import cli
    from watchdog.sources.host import read_capabilities

    monkeypatch.delenv("SUPERVISOR_SERVER_URL", raising=False)
    conf = write_config(tmp_path, tmp_path / "no-kubeconfig.yaml")
    (tmp_path / "logs" / "containerd.log").write_text(MOUNT_LINE + "\n")
    try:
        code = cli.main(["diagnose", "--json", "--config", str(conf)])
    finally:
        structlog.reset_defaults()
    doc = json.loads(capsys.readouterr().out)
    real = read_capabilities()
    assert real is not None
    expected = "host.not-privileged" if lacks_essentials(real) else "images.load-failed"
    assert code == 1
    from_log = [(p["id"], p["subject"]) for p in doc["problems"] if p["source"].endswith("containerd.log")]
    assert from_log == [(expected, "containerd")]


def test_every_shipped_mount_or_sysctl_denial_example_is_decided_by_privileges(rulebook: RuleBook) -> None:
    """Over every shipped rule's examples: unprivileged, a denial is host.not-privileged; privileged
    on a volume, nothing becomes host.not-privileged and only the host-share rule changes (to the
    load failure)."""
    denial = re.compile(r"(?i)\bmount\b.*operation not permitted|(?:/proc/sys/|\bsysctl\b).*(?:operation not permitted|"
                        r"permission denied|read-only file system)")
    decided = 0
    for rule in rulebook.rules:
        for example in rule.examples:
            f = rulebook.finding(rule.id, "x", evidence=[example], scope="process:x")
            (unpriv,) = with_host_facts(rulebook, [f], sample(UNPRIVILEGED_STATUS), HS)
            (priv,) = with_host_facts(rulebook, [f], sample(PRIVILEGED_STATUS), HS)
            if denial.search(example) and not rule.id.startswith("host."):
                decided += 1
                assert unpriv.id == "host.not-privileged", example
            else:
                assert unpriv.id == rule.id, example
            assert priv.id == ("images.load-failed" if unpriv.id != rule.id and rule.id == "images.bind-mount-storage"
                               else rule.id), example
    assert decided >= 5
