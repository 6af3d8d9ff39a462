"""The boot as a story: when each phase was reached, when the current one began, and whether it
has passed its deadline (``phase.stuck``); the console's HTTP answer (``console.unreachable``).

Pure: views, settings and ``now`` in; timelines, clocks and findings out. The app keeps the
state (a ``PhaseClock``, the timeline) and does the reading (log tails, the HTTP probe).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ABSENT, PHASES, UNKNOWN, Finding, ProbeResult, Problem, ProcessView, RegionView, Severity

READY = "ready"
ORDER = (*PHASES, READY)
PHASE_SCOPE = "phase"
CONSOLE_SCOPE = "console-probe"
EXTRA_KEYS = ("api",)
"""Timeline keys beyond the contract's phases: ``api`` is when the k3s API first answered."""
SCRIPT_DEADLINE_PHASES = frozenset({"containerd", "k3s"})
"""Phases whose deadline is the image's own (its script gives up there): stuck is an error."""


def previous_phase(phase: str) -> str | None:
    i = ORDER.index(phase)
    return ORDER[i - 1] if i > 0 else None


def deadline_of(phase: str, settings: Settings) -> float | None:
    """Seconds the phase may take, from when it began; ``None`` for ``ready``."""
    if phase in ("containerd", "k3s", "console"):
        return settings.programs[phase].deadline_seconds
    if phase == "images":
        return settings.phases.images_deadline_seconds
    if phase == "region":
        return settings.phases.region_deadline_seconds
    return None


@dataclass(frozen=True)
class PhaseClock:
    """The current phase and when it began."""

    phase: str
    began: float


def advance(
    clock: PhaseClock | None, phase: str, timeline: Mapping[str, float | None], now: float, listener_start: float
) -> PhaseClock:
    """The clock after looking at the phase again.

    At the first look (the listener just started) the phase began when the previous one was
    reached, if the timeline knows (it survives a listener restart), else at the listener's
    start. Later, a change of phase (forward, or back after a crash) begins it now.
    """
    if clock is not None and clock.phase == phase:
        return clock
    if clock is None:
        prev = previous_phase(phase)
        reached = timeline.get(prev) if prev else None
        return PhaseClock(phase, reached if reached is not None and reached <= now else listener_start)
    return PhaseClock(phase, now)


def update(
    timeline: Mapping[str, float | None],
    phase: str,
    now: float,
    processes: Mapping[str, ProcessView],
    region: RegionView | None = None,
) -> dict[str, float | None]:
    """Mark the phases before ``phase`` (and ``ready``) reached, the first time only.

    A program phase found RUNNING by a snapshot is dated by supervisord's start time (the
    listener may have started late), not by when the listener noticed.
    """
    out: dict[str, float | None] = {k: timeline.get(k) for k in (*ORDER, *EXTRA_KEYS)}
    reached = ORDER[: ORDER.index(phase) + (1 if phase == READY else 0)] if phase in ORDER else ()
    for p in reached:
        if out[p] is not None:
            continue
        view = processes.get(p)
        if view is not None and view.state == ABSENT:
            continue  # a skipped stage (no program, as containerd in the embedded layout) is never reached
        if view is not None and view.state == "RUNNING" and view.since is not None and view.since <= now:
            out[p] = view.since
        else:
            out[p] = now
    if out["api"] is None and region is not None and region.api == "ok":
        out["api"] = now
    return out


def forget_unreached(timeline: Mapping[str, float | None], phase: str) -> dict[str, float | None]:
    """A timeline carried over a listener restart keeps only the phases passed now (the container
    may have restarted since: its boot starts again)."""
    if phase not in ORDER:
        return dict(timeline)
    passed = set(ORDER[: ORDER.index(phase) + (1 if phase == READY else 0)])
    out = {k: (v if k in passed else None) for k, v in timeline.items() if k in ORDER}
    extras = {k: timeline.get(k) for k in EXTRA_KEYS if k in timeline}
    if "region" not in passed and phase in ("containerd", "images", "k3s"):
        extras = {k: None for k in extras}
    return {**out, **extras}


@dataclass(frozen=True)
class BootTook:
    """How long the boot took, phase by phase (seconds; ``None`` where the start is unknown)."""

    phases: Mapping[str, float | None]
    total: float | None
    began_before_watchdog: bool
    """The listener started after the boot had begun: the first phase's start is unknown."""


def boot_took(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    listener_start: float,
    first_look: bool,
    skipped: frozenset[str] = frozenset(),
) -> BootTook | None:
    """The boot in numbers at the moment ``ready`` is first reached; ``None`` otherwise.

    Each phase took from the previous phase's time (the listener's start for the first one) to
    its own; the console's ends at ``ready`` (when it answers), so the phases add up to the total. Nothing is said when ``ready`` was already reached at the listener's first look (it
    did not watch this boot) or carried over from before (it was said then). ``skipped`` phases
    (a program ``ABSENT`` in this layout) are left out.
    """
    ready_at = after.get(READY)
    if first_look or before.get(READY) is not None or ready_at is None:
        return None
    previous: float | None = listener_start
    first = next((after[p] for p in PHASES if after.get(p) is not None), None)
    late = first is not None and first < listener_start
    if late:
        previous = None
    took: dict[str, float | None] = {}
    for phase in PHASES:
        # The console's phase ends when it answers, which is when ``ready`` is reached.
        reached = ready_at if phase == PHASES[-1] else after.get(phase)
        if reached is None or phase in skipped:
            continue  # a skipped phase's moments count in the next one's
        took[phase] = max(0.0, reached - previous) if previous is not None else None
        previous = reached
    start = first if late else listener_start
    total = max(0.0, ready_at - start) if start is not None else None
    return BootTook(took, total, late)


def states_known(processes: Mapping[str, ProcessView]) -> bool:
    return bool(processes) and all(v.state != UNKNOWN for v in processes.values())


def duration(seconds: float) -> tuple[str, str]:
    """A duration for people, (zh, en): ``12 min 5 s`` / ``12 分 5 秒``."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} 小时 {m} 分", f"{h} h {m} min"
    if m:
        return f"{m} 分 {sec} 秒", f"{m} min {sec} s"
    return f"{sec} 秒", f"{sec} s"


def stuck_evidence(
    phase: str,
    processes: Mapping[str, ProcessView],
    region: RegionView,
    active: Sequence[Problem],
    init_lines: Sequence[str],
    tails: Sequence[tuple[str, Sequence[str]]],
    probe: ProbeResult | None,
    tail_lines: int = 8,
) -> list[str]:
    """Whatever the phase has to show: program states, the region's pods, problems already
    raised, the init program's last lines or the end of the program's logs."""
    lines: list[str] = []
    for comp in ("containerd", "k3s", "console"):
        v = processes.get(comp)
        if v is None or v.state == ABSENT:
            continue
        if comp == phase or (phase in ("images", "region") and comp in ("containerd", "k3s")):
            lines.append(f"supervisord: {comp} is {v.state}" + (f", {v.restarts} restarts" if v.restarts else ""))
    if phase == "region":
        lines.append(f"k3s API: {region.api}; pods ready {region.pods_ready}/{region.pods_total}")
        waiting = [f"{name}: {p.phase} {p.ready}" + (f" ({p.reason})" if p.reason else "")
                   for name, p in sorted(region.pods.items()) if not _all_ready(p.ready)]
        lines.extend(waiting[:8])
    if phase == "console" and probe is not None:
        lines.append(f"HTTP probe: {probe.detail}")
    others = [p for p in active if p.finding.id != "phase.stuck"]
    if others:
        lines.append("problems already raised: " + ", ".join(f"{p.finding.id} ({p.finding.subject})" for p in others[:6]))
    if phase == "images" and init_lines:
        lines.append("init program, last lines:")
        lines.extend(list(init_lines)[-tail_lines:])
    for path, tail in tails:
        if tail:
            lines.append(f"{path}, last lines:")
            lines.extend(list(tail)[-tail_lines:])
    return lines


def _all_ready(ready: str) -> bool:
    """``n/n`` containers ready (kubectl's READY column), n > 0."""
    done, _, total = ready.partition("/")
    return bool(total) and done == total and total != "0"


def stuck_finding(
    rules: RuleBook,
    clock: PhaseClock,
    now: float,
    settings: Settings,
    evidence: Sequence[str],
) -> Finding | None:
    """``phase.stuck`` when the current phase has passed its deadline; else ``None``."""
    limit = deadline_of(clock.phase, settings)
    if limit is None:
        return None
    elapsed = now - clock.began
    if elapsed <= limit:
        return None
    took_zh, took_en = duration(elapsed)
    limit_zh, limit_en = duration(limit)
    return rules.finding(
        "phase.stuck",
        clock.phase,
        evidence=[f"phase {clock.phase} began {took_en} ago; its deadline is {limit_en}", *evidence],
        source=f"phase:{clock.phase}",
        scope=PHASE_SCOPE,
        severity=Severity.ERROR if clock.phase in SCRIPT_DEADLINE_PHASES else None,
        details={"elapsed_zh": took_zh, "elapsed_en": took_en, "deadline_zh": limit_zh, "deadline_en": limit_en},
    )


def console_answering(view: ProcessView | None, probe_ok_since: float | None, enabled: bool) -> bool | None:
    """Whether the console's current run has answered HTTP; ``None`` when probing is off."""
    if not enabled:
        return None
    if view is None or view.state != "RUNNING":
        return False
    return probe_ok_since is not None and view.since is not None and probe_ok_since >= view.since


def console_finding(
    rules: RuleBook,
    view: ProcessView | None,
    probe: ProbeResult | None,
    probed_at: float | None,
    now: float,
    grace: float,
    subject: str = "console",
    tails: Sequence[tuple[str, Sequence[str]]] = (),
) -> Finding | None:
    """``console.unreachable``: RUNNING for longer than ``grace`` and the latest probe of this run
    got no HTTP answer."""
    if view is None or view.state != "RUNNING" or view.since is None or probe is None or probe.ok:
        return None
    if probed_at is None or probed_at < view.since or now - view.since < grace:
        return None
    evidence = [probe.detail, f"supervisord: console RUNNING for {duration(now - view.since)[1]}"]
    for path, tail in tails:
        if tail:
            evidence.append(f"{path}, last lines:")
            evidence.extend(list(tail)[-8:])
    return rules.finding(
        "console.unreachable",
        subject,
        evidence=evidence,
        source="console:http",
        scope=CONSOLE_SCOPE,
        details={"detail": probe.detail},
    )
