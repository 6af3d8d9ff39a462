"""Where the boot is: the phase and the overall verdict. Pure (the timeline is in ``timeline.py``)."""
from __future__ import annotations

from typing import Mapping

from watchdog.diagnosis.problems import ProblemBook
from watchdog.model import ABSENT, PHASES, UNKNOWN, Overall, ProcessView, RegionView, Severity

READY = "ready"
_NOT_BEGUN = frozenset({UNKNOWN, "STOPPED", ABSENT})
_FAILED = frozenset({"BACKOFF", "FATAL"})


def begun(view: ProcessView | None) -> bool:
    """supervisord has started the program at least once (whatever happened next)."""
    return view is not None and view.state not in _NOT_BEGUN


def failed(view: ProcessView | None) -> bool:
    """The program's own state is a failure: BACKOFF, FATAL, or EXITED unexpectedly.

    An EXITED seen only in a snapshot (no event said whether it was expected) counts as
    unexpected when its exit status is not 0: the watched programs are daemons.
    """
    if view is None:
        return False
    if view.state in _FAILED:
        return True
    if view.state == "EXITED":
        return not view.expected if view.expected is not None else view.exitstatus not in (None, 0)
    return False


def stage_done(
    stage: str, processes: Mapping[str, ProcessView], region: RegionView | None, console_answering: bool | None = None
) -> bool:
    """Whether a stage is healthy or skipped (no program) on its own terms.

    The console is done when RUNNING and, if it is probed (``console_answering`` not ``None``),
    its HTTP port has answered, as the image's script waits for ``curl http://127.0.0.1:7070``.
    """
    if stage in ("containerd", "k3s", "console"):
        view = processes.get(stage)
        if stage == "console" and view is not None and view.state == "RUNNING" and console_answering is False:
            return False
        return view is not None and view.state in ("RUNNING", ABSENT)
    if stage == "images":
        return False  # known only from k3s having begun (the image loads them before k3s)
    if stage == "region":
        return region is not None and region.ready
    raise ValueError(stage)


def current_phase(
    processes: Mapping[str, ProcessView], region: RegionView | None, console_answering: bool | None = None
) -> str:
    """The lowest failing layer: the first stage not yet healthy.

    A stage with no failure of its own counts as passed once a later one has begun (the image
    starts k3s only after its images are loaded); a stage whose program has failed is never
    passed, whatever began after it; a stage with no program (``ABSENT``) is skipped.
    """
    begun_after = {stage: False for stage in PHASES}
    later = False
    for stage in reversed(PHASES):
        begun_after[stage] = later
        if stage in processes and begun(processes.get(stage)):
            later = True
        elif stage == "region" and region is not None and region.api == "ok":
            later = True
    for stage in PHASES:
        if stage_done(stage, processes, region, console_answering):
            continue
        if begun_after[stage] and not failed(processes.get(stage)):
            continue
        return stage
    return READY


def overall(phase: str, book: ProblemBook) -> Overall:
    """failed: an error stops the boot; degraded: errors after boot, or warnings; else starting/healthy."""
    severities = {p.finding.severity for p in book.active.values()}
    if Severity.ERROR in severities:
        return Overall.DEGRADED if phase == READY else Overall.FAILED
    if Severity.WARNING in severities:
        return Overall.DEGRADED
    return Overall.HEALTHY if phase == READY else Overall.STARTING
