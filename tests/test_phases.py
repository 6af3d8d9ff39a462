"""Where the boot is: phase, overall and timeline, as pure functions."""
from __future__ import annotations

import pytest

from watchdog.diagnosis.phases import current_phase, overall
from watchdog.diagnosis.problems import ProblemBook
from watchdog.model import Finding, Overall, ProcessView, RegionView, Severity, Steps, Texts


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
        # containerd died after k3s began: the boot has passed it (its problem says the rest)
        (views("FATAL", "RUNNING"), None, "region"),
    ],
)
def test_phase_is_the_first_stage_not_yet_healthy(procs: dict[str, ProcessView], region: RegionView | None,
                                                  phase: str) -> None:
    assert current_phase(procs, region) == phase


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
