"""Where the boot is: phase, overall and timeline, as pure functions."""
from __future__ import annotations

import itertools

import pytest

from watchdog.diagnosis.phases import READY, current_phase, failed, overall
from watchdog.diagnosis.problems import ProblemBook
from watchdog.model import PHASES, Finding, Overall, ProcessView, RegionView, Severity, Steps, Texts


def views(containerd: str = "UNKNOWN", k3s: str = "UNKNOWN", console: str = "UNKNOWN") -> dict[str, ProcessView]:
    return {"containerd": ProcessView(containerd), "k3s": ProcessView(k3s), "console": ProcessView(console)}


READY_REGION = RegionView(api="ok", ready=True)


@pytest.mark.parametrize(
    ("procs", "region", "phase"),
    [
        (views(), None, "containerd"),
        (views("STARTING"), None, "containerd"),
        (views("RUNNING"), None, "images"),
        (views("RUNNING", "STARTING"), None, "k3s"),
        (views("RUNNING", "BACKOFF"), None, "k3s"),
        (views("RUNNING", "RUNNING"), RegionView(api="not-started"), "region"),
        (views("ABSENT", "RUNNING"), RegionView(api="ok"), "region"),
        (views("RUNNING", "RUNNING", "STARTING"), READY_REGION, "console"),
        (views("RUNNING", "RUNNING", "RUNNING"), READY_REGION, "ready"),
        (views("ABSENT", "RUNNING", "ABSENT"), READY_REGION, "ready"),
        # the lowest failing layer: a failed program's stage is never passed (issue 9)
        (views("FATAL", "RUNNING"), None, "containerd"),
        (views("RUNNING", "FATAL", "STARTING"), READY_REGION, "k3s"),
        (views("RUNNING", "FATAL", "RUNNING"), READY_REGION, "k3s"),
        (views("RUNNING", "BACKOFF", "RUNNING"), None, "k3s"),
        (views("BACKOFF", "FATAL", "RUNNING"), READY_REGION, "containerd"),
        (views("ABSENT", "FATAL", "RUNNING"), READY_REGION, "k3s"),
        (views("RUNNING", "RUNNING", "FATAL"), READY_REGION, "console"),
        # a stage with no failure of its own is passed once a later one has begun
        (views("STOPPED", "RUNNING"), RegionView(api="ok"), "region"),
        (views("STARTING", "RUNNING", "RUNNING"), READY_REGION, "ready"),
        (views("RUNNING", "STOPPED", "RUNNING"), READY_REGION, "ready"),
        # embedded layout: no runtime program, the stage is skipped
        (views("ABSENT"), None, "images"),
        (views("ABSENT", "STARTING"), None, "k3s"),
        (views("ABSENT", "BACKOFF"), None, "k3s"),
        # the region has begun (the API answers) but is not ready, and the console waits
        (views("RUNNING", "RUNNING", "STOPPED"), RegionView(api="ok"), "region"),
    ],
)
def test_phase_is_the_first_stage_not_yet_healthy(procs: dict[str, ProcessView], region: RegionView | None,
                                                  phase: str) -> None:
    assert current_phase(procs, region) == phase


EXITED_UNEXPECTEDLY = ProcessView("EXITED", exitstatus=1, expected=False)
EXITED_EXPECTEDLY = ProcessView("EXITED", exitstatus=0, expected=True)


@pytest.mark.parametrize(
    ("view", "is_failed"),
    [
        (ProcessView("BACKOFF"), True),
        (ProcessView("FATAL"), True),
        (EXITED_UNEXPECTEDLY, True),
        (EXITED_EXPECTEDLY, False),
        (ProcessView("EXITED", exitstatus=2), True),  # a snapshot: no event said; non-zero counts
        (ProcessView("EXITED", exitstatus=0), False),
        (ProcessView("EXITED", exitstatus=1, expected=True), False),  # supervisord's exitcodes win
        (ProcessView("RUNNING"), False),
        (ProcessView("STARTING"), False),
        (ProcessView("STOPPED"), False),
        (ProcessView("ABSENT"), False),
        (ProcessView("UNKNOWN"), False),
        (None, False),
    ],
)
def test_failed_is_backoff_fatal_or_an_unexpected_exit(view: ProcessView | None, is_failed: bool) -> None:
    assert failed(view) is is_failed


def test_fatal_k3s_with_a_console_that_has_begun_is_phase_k3s() -> None:
    """The bug of issue 9: k3s FATAL, the console started anyway, the phase said `console`."""
    procs = views("RUNNING", "FATAL", "RUNNING")
    assert current_phase(procs, READY_REGION, console_answering=True) == "k3s"


def test_k3s_that_exited_expectedly_after_the_console_began_is_passed() -> None:
    procs = {"containerd": ProcessView("RUNNING"), "k3s": EXITED_EXPECTEDLY, "console": ProcessView("RUNNING")}
    assert current_phase(procs, READY_REGION) == READY
    procs["k3s"] = EXITED_UNEXPECTEDLY
    assert current_phase(procs, READY_REGION) == "k3s"


# Every combination of program states and region views: the phase's promises hold in each.
STATES = {
    "UNKNOWN": ProcessView("UNKNOWN"), "ABSENT": ProcessView("ABSENT"), "STOPPED": ProcessView("STOPPED"),
    "STARTING": ProcessView("STARTING"), "RUNNING": ProcessView("RUNNING"), "BACKOFF": ProcessView("BACKOFF"),
    "FATAL": ProcessView("FATAL"), "EXITED-expected": EXITED_EXPECTEDLY, "EXITED-unexpected": EXITED_UNEXPECTEDLY,
}
REGIONS = {"none": None, "not-started": RegionView(api="not-started"), "api-ok": RegionView(api="ok"),
           "ready": READY_REGION}
COMBINATIONS = list(itertools.product(STATES, STATES, STATES, REGIONS, (None, False, True)))


@pytest.mark.parametrize("combo", [COMBINATIONS[i::9] for i in range(9)], ids=[f"slice{i}" for i in range(9)])
def test_phase_promises_hold_for_every_combination(combo: list[tuple[str, str, str, str, bool | None]]) -> None:
    for c, k, s, r, answering in combo:
        procs = {"containerd": STATES[c], "k3s": STATES[k], "console": STATES[s]}
        region = REGIONS[r]
        phase = current_phase(procs, region, answering)
        where = f"containerd={c} k3s={k} console={s} region={r} answering={answering}: {phase}"
        order = (*PHASES, READY)
        at = order.index(phase)
        # never past a failed program's stage
        for comp, view in procs.items():
            if failed(view):
                assert at <= order.index(comp), where
        # never a skipped (ABSENT) stage, and never a stage that is healthy on its own terms
        if phase in procs:
            assert procs[phase].state != "ABSENT", where
            assert procs[phase].state != "RUNNING" or (phase == "console" and answering is False), where
        # all programs RUNNING (or ABSENT), the region ready and the console answering: ready
        healthy = all(v.state in ("RUNNING", "ABSENT") for v in procs.values())
        if healthy and r == "ready" and answering is not False:
            assert phase == READY, where
        if phase == READY:
            assert not any(failed(v) for v in procs.values()), where
            console = procs["console"].state
            assert console == "ABSENT" or (console == "RUNNING" and answering is not False), where


def _book(*severities: Severity) -> ProblemBook:
    findings = [Finding(f"x.y{i}", "s", sev, "k3s", Texts("z", "e"), Steps((), ())) for i, sev in enumerate(severities)]
    return ProblemBook().add(findings, 1.0)[0]


@pytest.mark.parametrize(
    ("phase", "severities", "expected"),
    [
        ("k3s", (), Overall.STARTING),
        ("ready", (), Overall.HEALTHY),
        ("ready", (Severity.INFO,), Overall.HEALTHY),
        ("k3s", (Severity.ERROR,), Overall.FAILED),
        ("ready", (Severity.ERROR,), Overall.DEGRADED),
        ("region", (Severity.WARNING,), Overall.DEGRADED),
    ],
)
def test_overall(phase: str, severities: tuple[Severity, ...], expected: Overall) -> None:
    assert overall(phase, _book(*severities)) == expected


@pytest.mark.parametrize(("expected", "is_failed"), [(False, True), (True, False)])
def test_an_exit_event_carries_whether_supervisord_expected_it(expected: bool, is_failed: bool) -> None:
    from watchdog.diagnosis.processes import apply_change
    from watchdog.model import ProcessStateChange

    view = apply_change(ProcessView("RUNNING"), ProcessStateChange("k3s", "k3s", "RUNNING", "EXITED", expected=expected),
                        10.0, 60.0, 5)
    assert view.expected is expected and failed(view) is is_failed
    again = apply_change(view, ProcessStateChange("k3s", "k3s", "EXITED", "STARTING"), 11.0, 60.0, 5)
    assert again.expected is None
