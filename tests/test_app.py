"""The Monitor: events in, problems and status out (no processes; edges injected)."""
from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from tests.helpers import state_frame, tick_frame
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import Envelope, ProcessInfo
from watchdog.sources.supervisor_protocol import parse_header


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeRpc:
    """Stands in for supervisord's XML-RPC (the real one is exercised in tests/integration)."""

    url = "unix:///fake"

    def __init__(self, infos: list[ProcessInfo]) -> None:
        self.infos = {i.name: i for i in infos}

    def all_process_info(self) -> list[ProcessInfo]:
        return list(self.infos.values())

    def process_info(self, name: str) -> ProcessInfo | None:
        return self.infos.get(name)


def envelope(raw: str) -> Envelope:
    header, payload = raw.split("\n", 1)
    return Envelope(parse_header(header), payload)


def feed(mon: Monitor, *frames: str) -> None:
    for f in frames:
        mon.handle(envelope(f))


def status(settings: Settings) -> dict:
    return json.loads(Path(settings.status_file).read_text())


def test_fatal_program_raises_start_failed_with_log_evidence(settings: Settings, rulebook: RuleBook) -> None:
    Path(settings.log_dir, "k3s.log").write_text('level=info msg="Starting k3s"\nlevel=fatal msg="it broke"\n')
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, rpc=FakeRpc([ProcessInfo("k3s", "FATAL", spawnerr="Exited too quickly")]))
    with capture_logs() as logs:
        feed(mon, state_frame("STARTING", "k3s", "STOPPED", 1), state_frame("BACKOFF", "k3s", "STARTING", 2, tries=1),
             state_frame("FATAL", "k3s", "BACKOFF", 3))
        clock.t += 1
        feed(mon, tick_frame(int(clock.t), 4))  # counting alone is coalesced into the next write
    doc = status(settings)
    (p,) = doc["problems"]
    assert (p["id"], p["subject"], p["severity"], p["count"]) == ("k3s.start-failed", "k3s", "error", 2)
    assert 'level=fatal msg="it broke"' in p["evidence"]
    assert any("Exited too quickly" in e for e in p["evidence"])
    assert p["source"].endswith("k3s.log")
    assert doc["overall"] == "failed" and doc["components"]["k3s"]["state"] == "FATAL"
    raised = [e for e in logs if e["event"] == "problem_raised"]
    assert len(raised) == 1 and raised[0]["id"] == "k3s.start-failed" and raised[0]["remediation"]


def test_specific_cause_replaces_the_generic_problem(settings: Settings, rulebook: RuleBook) -> None:
    Path(settings.log_dir, "k3s.log").write_text(
        'E1130 kubelet.go:1431] "Failed to create cgroup" err="cannot enter cgroupv2 \\"/sys/fs/cgroup/kubepods\\" '
        'with domain controllers -- it is in an invalid state"\n'
    )
    mon = Monitor(settings, rulebook, clock=Clock())
    feed(mon, state_frame("FATAL", "k3s", "BACKOFF", 1))
    assert [p["id"] for p in status(settings)["problems"]] == ["k3s.cgroupv2-unsupported"]


def test_problem_resolves_after_program_stays_running(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock)
    feed(mon, state_frame("BACKOFF", "console", "STARTING", 1))
    assert status(settings)["problems"][0]["id"] == "console.start-failed"
    clock.t += 1
    feed(mon, state_frame("RUNNING", "console", "STARTING", 2, pid=77))
    clock.t += settings.resolve_after_seconds - 5
    feed(mon, tick_frame(int(clock.t), 3))
    assert len(mon.book.active) == 1  # not yet: RUNNING for less than resolve_after_seconds
    clock.t += 10
    with capture_logs() as logs:
        feed(mon, tick_frame(int(clock.t), 4))
    doc = status(settings)
    assert doc["problems"] == [] and doc["resolved"][0]["id"] == "console.start-failed"
    assert [e["event"] for e in logs if e["event"].startswith("problem_")] == ["problem_resolved"]


def test_alerts_one_line_per_raise_none_in_between(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock)
    with capture_logs() as logs:
        for i in range(10):
            clock.t += 1
            feed(mon, state_frame("BACKOFF", "console", "STARTING", i))
    assert sum(1 for e in logs if e["event"] == "problem_raised" and e["id"] == "console.start-failed") == 1
    assert mon.book.active[("console.start-failed", "console")].count == 10


def test_programs_supervisord_does_not_have_are_absent(settings: Settings, rulebook: RuleBook) -> None:
    rpc = FakeRpc([ProcessInfo("k3s", "RUNNING", pid=5, start=1.0)])
    mon = Monitor(settings, rulebook, clock=Clock(), rpc=rpc)
    mon.resync(mon.clock())
    mon.publish([], mon.clock(), force=True)
    doc = status(settings)
    assert doc["components"]["containerd"]["state"] == "ABSENT"
    assert doc["components"]["console"]["state"] == "ABSENT"
    assert doc["problems"] == []
    assert doc["phase"] == "region"  # containerd skipped, images passed since k3s has begun


def test_listener_restart_rediagnoses_a_program_found_fatal(settings: Settings, rulebook: RuleBook) -> None:
    """A listener started after the failure learns it over XML-RPC and still diagnoses it."""
    Path(settings.log_dir, "containerd.log").write_text("containerd: failed to load TOML: /etc/containerd/config.toml\n")
    rpc = FakeRpc([ProcessInfo("containerd", "FATAL", spawnerr="Exited too quickly")])
    mon = Monitor(settings, rulebook, clock=Clock(), rpc=rpc)
    mon.resync(mon.clock())
    mon.publish([], mon.clock(), force=True)
    doc = status(settings)
    assert [p["subject"] for p in doc["problems"]] == ["containerd"]
    assert doc["phase"] == "containerd" and doc["overall"] == "failed"


def test_without_rpc_it_says_so_once(settings: Settings, rulebook: RuleBook) -> None:
    mon = Monitor(settings, rulebook, clock=Clock())
    with capture_logs() as logs:
        mon.resync(1.0)
        feed(mon, tick_frame(1, 1, "TICK_60"), tick_frame(2, 2, "TICK_60"))
    assert sum(1 for e in logs if e["event"] == "supervisor_rpc_unavailable") == 1


def test_flapping_program_raises_process_flapping(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock)
    for i in range(settings.flap_restarts):
        clock.t += 3
        feed(mon, state_frame("STARTING", "k3s", "EXITED" if i else "STOPPED", 2 * i),
             state_frame("RUNNING", "k3s", "STARTING", 2 * i + 1, pid=100 + i))
    assert ("process.flapping", "k3s") in mon.book.active
    assert mon.processes["k3s"].restarts == settings.flap_restarts - 1


def test_status_write_failure_is_said_once_and_recovers(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock()
    writes: list[str] = []
    failing = [True]

    def writer(path: str, text: str) -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
        writes.append(text)

    mon = Monitor(settings, rulebook, clock=clock, writer=writer)
    with capture_logs() as logs:
        for i in range(5):
            clock.t += 2
            feed(mon, state_frame("BACKOFF", "k3s", "STARTING", i))
        failing[0] = False
        clock.t += 2
        feed(mon, tick_frame(int(clock.t), 99))
    events = [e["event"] for e in logs]
    assert events.count("status_write_failed") == 1 and events.count("status_write_recovered") == 1
    assert writes and json.loads(writes[-1])["problems"][0]["id"] == "k3s.start-failed"
