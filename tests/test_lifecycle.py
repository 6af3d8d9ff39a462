"""Lifecycle across a listener restart, and restart storms kept to a few lines and writes."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.helpers import state_frame, tick_frame
from tests.test_app import Clock, FakeRpc, feed, status
from watchdog.app import Monitor, listen
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import HostSample, ProbeResult, ProcessInfo
from watchdog.publication import MIN_WRITE_INTERVAL
from watchdog.sinks.status_restore import problem_from_dict, restore
from watchdog.sources.supervisor_events import EventChannel

T0 = 1_790_000_000.0
CGROUP_LINE = ('E1130 kubelet.go:1431] "Failed to create cgroup" err="cannot enter cgroupv2 \\"/sys/fs/cgroup/kubepods\\" '
               'with domain controllers -- it is in an invalid state"\n')


def quiet_monitor(settings: Settings, rulebook: RuleBook, clock: Clock, **kw: object) -> Monitor:
    return Monitor(settings, rulebook, clock=clock, host_sampler=HostSample,
                   console_prober=lambda: ProbeResult(True, "HTTP 200", 200), **kw)  # type: ignore[arg-type]


def failing_k3s_file(settings: Settings, rulebook: RuleBook) -> dict:
    """A first listener sees k3s fail three times, then a console failure that resolves."""
    Path(settings.log_dir, "k3s.log").write_text(CGROUP_LINE)
    clock = Clock(T0)
    mon = quiet_monitor(settings, rulebook, clock)
    for i in range(3):
        feed(mon, state_frame("BACKOFF", "k3s", "STARTING", i + 1))
        clock.t += 10
    feed(mon, state_frame("BACKOFF", "console", "STARTING", 10))
    clock.t += 1
    feed(mon, state_frame("RUNNING", "console", "STARTING", 11))
    clock.t += settings.resolve_after_seconds + 1
    feed(mon, tick_frame(int(clock.t), 12))
    mon.publish([], clock.t, force=True)
    return status(settings)


def test_restarted_listener_keeps_first_seen_and_count(settings: Settings, rulebook: RuleBook) -> None:
    """Active problems keep first_seen and count; the resolved list comes along; no new raise line."""
    before = failing_k3s_file(settings, rulebook)
    (old,) = [p for p in before["problems"] if p["id"] == "k3s.cgroupv2-unsupported"]
    assert old["count"] == 3 and old["scope"] == "process:k3s"
    clock = Clock(T0 + 3600)
    mon = quiet_monitor(settings, rulebook, clock)
    with capture_logs() as logs:
        mon.restore_previous(clock.t)
        feed(mon, state_frame("BACKOFF", "k3s", "STARTING", 1))
    p = mon.book.active[("k3s.cgroupv2-unsupported", "k3s")]
    assert p.count == 4 and p.first_seen == T0
    assert not [e for e in logs if e["event"] == "problem_raised"]
    assert [e["event"] for e in logs].count("previous_status_restored") == 1
    after = status(settings)
    (new,) = [p for p in after["problems"] if p["id"] == "k3s.cgroupv2-unsupported"]
    assert new["first_seen"] == old["first_seen"] and new["count"] == 4
    assert [r["id"] for r in after["resolved"]] == [r["id"] for r in before["resolved"]] == ["console.start-failed"]


def test_resync_resolves_what_no_longer_holds(settings: Settings, rulebook: RuleBook) -> None:
    """Carried over, then k3s is found RUNNING long enough: the problem resolves with one line."""
    failing_k3s_file(settings, rulebook)
    clock = Clock(T0 + 3600)
    rpc = FakeRpc([ProcessInfo("k3s", "RUNNING", pid=7, start=T0 + 3000), ProcessInfo("containerd", "RUNNING", start=T0)])
    mon = quiet_monitor(settings, rulebook, clock, rpc=rpc)
    with capture_logs() as logs:
        mon.restore_previous(clock.t)
        mon.resync(clock.t)
        mon.publish(mon.refresh(clock.t), clock.t, force=True)
    assert not mon.book.active
    assert [(e["event"], e["id"]) for e in logs if e["event"].startswith("problem_")] == [
        ("problem_resolved", "k3s.cgroupv2-unsupported")
    ]


def run_listener(settings: Settings, rulebook: RuleBook, frames: str, clock: Clock) -> tuple[str, list[dict]]:
    out = io.StringIO()
    mon = quiet_monitor(settings, rulebook, clock)
    with capture_logs() as logs:
        assert listen(settings, rulebook, EventChannel(io.StringIO(frames), out), env={}, clock=clock, monitor=mon) == 0
    return out.getvalue(), logs


def test_listen_reads_the_previous_status_file_at_start(settings: Settings, rulebook: RuleBook) -> None:
    before = failing_k3s_file(settings, rulebook)
    (old,) = [p for p in before["problems"] if p["id"] == "k3s.cgroupv2-unsupported"]
    _, logs = run_listener(settings, rulebook, state_frame("FATAL", "k3s", "BACKOFF", 1), Clock(T0 + 7200))
    assert [e["event"] for e in logs].count("previous_status_restored") == 1
    (new,) = [p for p in status(settings)["problems"] if p["id"] == "k3s.cgroupv2-unsupported"]
    assert new["first_seen"] == old["first_seen"] and new["count"] == old["count"] + 1


@pytest.mark.parametrize(
    "content",
    ["{not json", "", '{"schema": 99}', json.dumps({"schema": 1, "overall": "failed"}), "\x00\xff binary"],
)
def test_corrupt_previous_file_starts_clean_saying_so_once(
    settings: Settings, rulebook: RuleBook, content: str
) -> None:
    path = Path(settings.status_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    out, logs = run_listener(settings, rulebook, tick_frame(1, 1), Clock(T0))
    assert [e["event"] for e in logs].count("previous_status_ignored") == 1
    doc = status(settings)  # rewritten, valid
    assert doc["schema"] == 1 and doc["problems"] == [] and doc["resolved"] == []
    assert out.startswith("READY\n")


def test_missing_previous_file_starts_clean_saying_so_once(settings: Settings, rulebook: RuleBook) -> None:
    _, logs = run_listener(settings, rulebook, tick_frame(1, 1), Clock(T0))
    ignored = [e for e in logs if e["event"] == "previous_status_ignored"]
    assert len(ignored) == 1 and "no previous status file" in ignored[0]["reason"]
    assert status(settings)["problems"] == []


def test_broken_problem_entries_are_left_out_and_the_rest_kept(settings: Settings, rulebook: RuleBook) -> None:
    doc = failing_k3s_file(settings, rulebook)
    good = doc["problems"][0]
    no_scope = {k: v for k, v in good.items() if k != "scope"}  # written by an older listener: inferred
    unknown = {**no_scope, "id": "region.pod-pending", "component": "region", "subject": "rbd-db-0", "source": "k8s:pod/rbd-db-0"}
    broken = {**good, "count": "three"}
    doc["problems"] = [no_scope, unknown, broken, "junk"]
    restored = restore(doc, {"containerd": "containerd", "k3s": "k3s", "console": "console"})
    assert list(restored.book.active) == [(good["id"], good["subject"])]
    assert restored.book.active[(good["id"], good["subject"])].finding.scope == "process:k3s"
    assert restored.skipped == 3


def test_problem_round_trips_through_the_status_file(settings: Settings, rulebook: RuleBook) -> None:
    doc = failing_k3s_file(settings, rulebook)
    for raw in doc["problems"] + doc["resolved"]:
        p = problem_from_dict(raw, {"k3s": "k3s", "console": "console"})
        assert p is not None
        from watchdog.sinks.status_file import problem_dict

        assert problem_dict(p) == raw


def test_timeline_is_carried_over_unless_the_container_restarted(settings: Settings, rulebook: RuleBook) -> None:
    """Same boot: the timeline survives. A restarted container (containerd STARTING again): it is forgotten."""
    clock = Clock(T0)
    mon = quiet_monitor(settings, rulebook, clock)
    feed(mon, state_frame("RUNNING", "containerd", "STARTING", 1), state_frame("RUNNING", "k3s", "STARTING", 2))
    mon.publish([], clock.t, force=True)
    first = status(settings)["timeline"]
    assert first["containerd"] and first["k3s"]

    rpc = FakeRpc([ProcessInfo("containerd", "RUNNING", start=T0), ProcessInfo("k3s", "RUNNING", start=T0)])
    same = quiet_monitor(settings, rulebook, Clock(T0 + 600), rpc=rpc)
    same.restore_previous(T0 + 600)
    same.resync(T0 + 600)
    same.publish([], T0 + 600, force=True)
    assert status(settings)["timeline"]["k3s"] == first["k3s"]

    rpc = FakeRpc([ProcessInfo("containerd", "STARTING"), ProcessInfo("k3s", "STOPPED")])
    fresh = quiet_monitor(settings, rulebook, Clock(T0 + 9000), rpc=rpc)
    fresh.restore_previous(T0 + 9000)
    fresh.resync(T0 + 9000)
    fresh.publish([], T0 + 9000, force=True)
    assert status(settings)["timeline"]["containerd"] is None and status(settings)["timeline"]["k3s"] is None


# ----------------------------------------------------------------------------- restart storms


@pytest.mark.parametrize("exit_kind", ["crash", "clean"])
def test_ten_thousand_flapping_events_give_bounded_lines_and_writes(
    settings: Settings, rulebook: RuleBook, exit_kind: str
) -> None:
    """A program restarting for minutes (startsecs=0: it never goes FATAL): one raised line per
    cause, at most one summary line a minute, one resolved line per cause, writes coalesced."""
    Path(settings.log_dir, "console.log").write_text("Traceback (most recent call last):\nValueError: boom\n")
    clock = Clock(T0)
    writes: list[float] = []
    mon = Monitor(settings, rulebook, clock=clock, writer=lambda path, text: writes.append(clock.t),
                  host_sampler=HostSample, console_prober=lambda: ProbeResult(True, "HTTP 200", 200))
    step = 0.02
    expected = "0" if exit_kind == "clean" else "1"
    cycle = [("STARTING", "EXITED"), ("RUNNING", "STARTING"), ("EXITED", "RUNNING")]
    events = 0
    next_tick = clock.t + 5
    with capture_logs() as logs:
        while events < 10_000:
            to_state, from_state = cycle[events % 3]
            extra = {"expected": expected, "pid": 100} if to_state == "EXITED" else {"pid": 100}
            feed(mon, state_frame(to_state, "console", from_state, events, **extra))
            events += 1
            clock.t += step
            if clock.t >= next_tick:
                feed(mon, tick_frame(int(clock.t), events))
                next_tick += 5
        duration = clock.t - T0
        storm_lines = len(logs)
        # It stops flapping and stays RUNNING: every cause resolves.
        feed(mon, state_frame("STARTING", "console", "EXITED", events + 1), state_frame("RUNNING", "console", "STARTING", events + 2))
        for i in range(30):
            clock.t += 5
            feed(mon, tick_frame(int(clock.t), events + 10 + i))
    raised = [(e["id"], e["subject"]) for e in logs if e["event"] == "problem_raised"]
    resolved = [(e["id"], e["subject"]) for e in logs if e["event"] == "problem_resolved"]
    summaries = [e for e in logs if e["event"] == "problem_ongoing"]
    assert ("process.flapping", "console") in raised
    assert len(raised) == len(set(raised)) and sorted(resolved) == sorted(raised)
    assert 2 <= len(summaries) <= duration / 60 + 1
    assert all(s["id"] == "process.flapping" and s["count"] > 1 for s in summaries)
    assert summaries[-1]["count"] > summaries[0]["count"]
    assert storm_lines <= len(raised) + len(summaries) + 10
    assert len(writes) <= duration / MIN_WRITE_INTERVAL + 2
    assert len(writes) < events / 10


def test_stuck_phase_carried_over_is_neither_resolved_nor_raised_again(settings: Settings, rulebook: RuleBook) -> None:
    """k3s stuck before the restart and still stuck after: the same problem, counted on."""
    clock = Clock(T0)
    first = quiet_monitor(settings, rulebook, clock)
    feed(first, state_frame("RUNNING", "containerd", "STARTING", 1), state_frame("STARTING", "k3s", "STOPPED", 2))
    for i in range(80):
        clock.t += 5
        feed(first, tick_frame(int(clock.t), 10 + i))
    first.publish([], clock.t, force=True)
    before = first.book.active[("phase.stuck", "k3s")]

    clock.t += 20
    rpc = FakeRpc([ProcessInfo("containerd", "RUNNING", start=T0), ProcessInfo("k3s", "STARTING")])
    again = quiet_monitor(settings, rulebook, clock, rpc=rpc)
    with capture_logs() as logs:
        again.restore_previous(clock.t)
        again.resync(clock.t)
        for i in range(20):
            clock.t += 5
            feed(again, tick_frame(int(clock.t), 200 + i))
    after = again.book.active[("phase.stuck", "k3s")]
    assert after.first_seen == before.first_seen and after.count > before.count
    assert not [e for e in logs if e["event"] in ("problem_raised", "problem_resolved")]
