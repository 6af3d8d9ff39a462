"""The boot timeline and phase deadlines: when each phase was reached, `phase.stuck` past a deadline."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import frame, state_frame, tick_frame
from tests.test_app import Clock, FakeRpc, feed, status
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis import timeline as boot
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import HostSample, PodView, ProbeResult, ProcessInfo, ProcessView, RegionView, Severity
from watchdog.sinks.report import render_text
from watchdog.watchers.boot import STARTUP_SETTLE_SECONDS

T0 = 1_790_000_000.0


def test_update_dates_a_program_found_running_by_its_start_time() -> None:
    """A listener that starts late dates containerd by supervisord's start, not by now."""
    procs = {"containerd": ProcessView("RUNNING", since=T0 - 300), "k3s": ProcessView("STARTING", since=T0 - 10)}
    t = boot.update({}, "k3s", T0, procs)
    assert t["containerd"] == T0 - 300
    assert t["images"] == T0  # known only from k3s having begun
    assert t["k3s"] is None and t["ready"] is None


def test_update_keeps_first_times_and_marks_ready_and_api() -> None:
    t = boot.update({"containerd": T0 - 50}, "ready", T0, {}, RegionView(api="ok"))
    assert t["containerd"] == T0 - 50
    assert all(t[p] == T0 for p in ("images", "k3s", "region", "console", "ready"))
    assert t["api"] == T0
    again = boot.update(t, "ready", T0 + 100, {}, RegionView(api="ok"))
    assert again == t


def test_first_look_counts_the_phase_from_when_the_previous_one_was_reached() -> None:
    clock = boot.advance(None, "k3s", {"images": T0 - 200}, T0, listener_start=T0)
    assert clock == boot.PhaseClock("k3s", T0 - 200)
    assert boot.advance(None, "containerd", {}, T0, listener_start=T0 - 3) == boot.PhaseClock("containerd", T0 - 3)


def test_a_phase_change_begins_the_new_phase_now() -> None:
    clock = boot.PhaseClock("region", T0 - 500)
    assert boot.advance(clock, "region", {}, T0, T0 - 900) is clock
    assert boot.advance(clock, "console", {"region": T0 - 1}, T0, T0 - 900) == boot.PhaseClock("console", T0)
    assert boot.advance(clock, "k3s", {}, T0, T0 - 900) == boot.PhaseClock("k3s", T0)  # back after a crash


def test_forget_unreached_drops_what_a_restarted_container_has_not_reached_again() -> None:
    t = {"containerd": T0, "images": T0 + 1, "k3s": T0 + 2, "region": T0 + 3, "console": T0 + 4, "ready": T0 + 5, "api": T0 + 2}
    assert boot.forget_unreached(t, "ready") == t
    out = boot.forget_unreached(t, "images")
    assert out["containerd"] == T0 and out["images"] is None and out["ready"] is None and out["api"] is None


@pytest.mark.parametrize(
    ("phase", "severity"),
    [("containerd", Severity.ERROR), ("k3s", Severity.ERROR), ("images", Severity.WARNING),
     ("region", Severity.WARNING), ("console", Severity.WARNING)],
)
def test_stuck_only_past_the_deadline(rulebook: RuleBook, phase: str, severity: Severity) -> None:
    """The image script's own deadlines (containerd, k3s) make an error; our limits a warning."""
    s = Settings()
    limit = boot.deadline_of(phase, s)
    assert limit is not None
    clock = boot.PhaseClock(phase, T0)
    assert boot.stuck_finding(rulebook, clock, T0 + limit, s, []) is None
    f = boot.stuck_finding(rulebook, clock, T0 + limit + 61, s, ["k3s.log, last lines:", "boom"])
    assert f is not None
    assert (f.id, f.subject, f.severity, f.scope) == ("phase.stuck", phase, severity, "phase")
    assert "boom" in f.evidence
    assert phase in f.summary.en and "min" in f.summary.en


def test_script_deadlines_are_the_defaults() -> None:
    s = Settings()
    assert boot.deadline_of("containerd", s) == 65.0 and boot.deadline_of("k3s", s) == 260.0
    assert boot.deadline_of("ready", s) is None


def test_duration_reads_for_people() -> None:
    assert boot.duration(42) == ("42 秒", "42 s")
    assert boot.duration(305) == ("5 分 5 秒", "5 min 5 s")
    assert boot.duration(7500) == ("2 小时 5 分", "2 h 5 min")


def test_stuck_evidence_of_the_region_lists_pods_not_ready() -> None:
    region = RegionView(api="ok", pods_total=2, pods_ready=1,
                        pods={"rbd-api-1": PodView("Running", "1/1"), "rbd-db-0": PodView("Pending", "0/2", "Unschedulable")})
    lines = boot.stuck_evidence("region", {"k3s": ProcessView("RUNNING")}, region, [], [], [], None)
    assert any("rbd-db-0" in line and "Unschedulable" in line for line in lines)
    assert not any("rbd-api-1" in line for line in lines)


# ----------------------------------------------------------------------------- in the Monitor


def monitor(settings: Settings, rulebook: RuleBook, clock: Clock) -> Monitor:
    return Monitor(settings, rulebook, clock=clock, host_sampler=HostSample,
                   console_prober=lambda: ProbeResult(True, "HTTP 200", 200))


def run_ticks(mon: Monitor, clock: Clock, seconds: float, serial: int = 1000) -> int:
    end = clock.t + seconds
    while clock.t < end:
        clock.t += 5
        feed(mon, tick_frame(int(clock.t), serial))
        serial += 1
    return serial


def test_slow_k3s_is_booting_then_stuck_and_the_status_text_says_which(
    settings: Settings, rulebook: RuleBook
) -> None:
    """k3s STARTING for 2 min: "starting"; past 260 s: phase.stuck with k3s.log's last lines."""
    Path(settings.log_dir, "k3s.log").write_text('level=info msg="Waiting for control-plane node to register"\n')
    clock = Clock(T0)
    mon = monitor(settings, rulebook, clock)
    feed(mon, state_frame("RUNNING", "containerd", "STARTING", 1))
    clock.t += 30
    feed(mon, frame("PROCESS_LOG_STDOUT", "processname:init groupname:init pid:9 channel:stdout\nINFO: Load container images successfully\n", 2),
         state_frame("STARTING", "k3s", "STOPPED", 3))
    run_ticks(mon, clock, 120)
    booting = status(settings)
    assert (booting["overall"], booting["phase"]) == ("starting", "k3s")
    assert not any(p["id"] == "phase.stuck" for p in booting["problems"])
    run_ticks(mon, clock, 200)
    stuck = status(settings)
    (p,) = [p for p in stuck["problems"] if p["id"] == "phase.stuck"]
    assert (p["subject"], p["severity"]) == ("k3s", "error")
    assert any("Waiting for control-plane" in e for e in p["evidence"])
    assert stuck["overall"] == "failed"
    booting_text, stuck_text = render_text(booting, ("en",)), render_text(stuck, ("en",))
    assert "starting" in booting_text and "stuck" not in booting_text
    assert "stuck in the k3s phase" in stuck_text and "failed" in stuck_text
    # k3s comes up: the problem resolves and the timeline dates k3s.
    feed(mon, state_frame("RUNNING", "k3s", "STARTING", 5000))
    run_ticks(mon, clock, 10)
    doc = status(settings)
    assert not any(p["id"] == "phase.stuck" for p in doc["problems"])
    assert doc["phase"] == "region" and doc["timeline"]["k3s"] is not None
    assert doc["timeline"]["containerd"] < doc["timeline"]["images"] <= doc["timeline"]["k3s"]


def test_stuck_problem_is_refreshed_at_most_once_a_minute(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock(T0)
    mon = monitor(settings, rulebook, clock)
    feed(mon, state_frame("STARTING", "containerd", "STOPPED", 1))
    run_ticks(mon, clock, 600)
    p = mon.book.active[("phase.stuck", "containerd")]
    assert 8 <= p.count <= 11  # about once a minute over ~9 minutes past the deadline, not every tick
    assert "containerd" in p.finding.summary.en


def test_no_deadline_is_judged_right_after_the_listener_starts(settings: Settings, rulebook: RuleBook) -> None:
    """A restarted listener first lets the API poll and the probe report before calling anything stuck."""
    clock = Clock(T0)
    rpc = FakeRpc([ProcessInfo("containerd", "RUNNING", start=T0 - 3000), ProcessInfo("k3s", "STARTING")])
    mon = Monitor(settings, rulebook, clock=clock, rpc=rpc, host_sampler=HostSample)
    mon.timeline = {"containerd": T0 - 3000, "images": T0 - 2900}  # as carried over from the previous file
    mon.resync(clock.t)
    mon.publish([], clock.t, force=True)
    run_ticks(mon, clock, STARTUP_SETTLE_SECONDS - 10)
    assert ("phase.stuck", "k3s") not in mon.book.active
    run_ticks(mon, clock, 20)
    assert ("phase.stuck", "k3s") in mon.book.active  # counted from images reached, 2900 s ago


def test_timeline_extra_key_api_is_in_the_status_file(settings: Settings, rulebook: RuleBook) -> None:
    clock = Clock(T0)
    mon = monitor(settings, rulebook, clock)
    mon.region = RegionView(api="ok")
    feed(mon, state_frame("RUNNING", "k3s", "STARTING", 1))
    doc = status(settings)
    assert doc["timeline"]["api"] is not None
    assert list(doc["timeline"])[:6] == ["containerd", "images", "k3s", "region", "console", "ready"]


def test_console_counts_as_reached_only_once_it_answers() -> None:
    from watchdog.diagnosis.phases import current_phase

    procs = {p: ProcessView("RUNNING", since=T0) for p in ("containerd", "k3s", "console")}
    region = RegionView(api="ok", ready=True)
    assert current_phase(procs, region, console_answering=False) == "console"
    assert current_phase(procs, region, console_answering=True) == "ready"
    assert current_phase(procs, region) == "ready"  # not probed: RUNNING is enough
    assert boot.console_answering(procs["console"], probe_ok_since=T0 - 1, enabled=True) is False  # an earlier run
    assert boot.console_answering(procs["console"], probe_ok_since=T0 + 1, enabled=True) is True
    assert boot.console_answering(procs["console"], None, enabled=False) is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[console]\nport = 70000", "console.port"),
        ("[console]\npath = 'login'", "console.path"),
        ("[console]\ntimeout_seconds = 0", "console.timeout_seconds"),
        ("[phases]\nimages_deadline_seconds = -1", "phases.images_deadline_seconds"),
        ("[programs.k3s]\ndeadline_seconds = 0", "programs.k3s.deadline_seconds"),
        ("[host]\nmin_cpus = -1", "host.min_cpus"),
        ("[host]\ndisk_full_percent = 6\ninodes_low_percent = 5", "host.disk_full_percent"),
    ],
)
def test_invalid_boot_settings_are_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    from watchdog.config import ConfigError, load_settings

    f = tmp_path / "w.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError, match=f"{f}: {key}: "):
        load_settings(f)


def test_boot_defaults_are_the_promised_ones() -> None:
    s = Settings()
    assert (s.console.host, s.console.port, s.console.path, s.console.probe) == ("127.0.0.1", 7070, "/", True)
    assert (s.host.disk_low_percent, s.host.inodes_low_percent) == (15.0, 5.0)
    assert (s.host.min_memory_mb, s.host.min_cpus, s.host.min_free_disk_mb) == (2048, 2, 51200)
    assert s.host.data_dir == "/app/data"
