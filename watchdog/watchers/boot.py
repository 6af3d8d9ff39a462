"""The boot: the phase, its timeline and deadlines (scope ``phase``), and restart-storm summaries.

The phase is memoised on what it depends on (the programs' views, the region's view, whether
the console answers), so that the many events that change none of them cost a comparison.
"""
from __future__ import annotations

from typing import Any, Mapping

from watchdog.diagnosis import phases, processes
from watchdog.diagnosis import timeline as boot
from watchdog.diagnosis.problems import Change
from watchdog.model import ABSENT, PHASE_FACTS, Finding
from watchdog.sinks import alerts
from watchdog.sinks.status_file import rfc3339
from watchdog.watchers.base import Watcher

STORM_SUMMARY_SECONDS = 60.0
"""While a program flaps, at most one ``problem_ongoing`` line this often."""
STUCK_REFRESH_SECONDS = 60.0
"""A stuck phase's problem (how long, evidence) is refreshed this often."""
STARTUP_SETTLE_SECONDS = 30.0
"""Phase deadlines are not judged this soon after the listener started (first poll and probe on their way)."""
FLAPPING = "process.flapping"
PHASES_KEPT = 64
"""Memoised phases kept (a restart storm cycles through a handful of states)."""


class BootWatcher(Watcher):
    name = "boot"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeline: dict[str, float | None] = {}
        self.clock: boot.PhaseClock | None = None
        self.check_pending = False
        """A restored timeline is checked against the programs' states once they are known."""
        self._stuck_checked_at: float | None = None
        self._storms: dict[tuple[str, str], tuple[float, float, int]] = {}
        """Per flapping problem: when it was raised, when its last line was said, its count then."""
        self._storms_due = 0.0
        self._storms_looked: float | None = None
        self._key: tuple[Any, ...] | None = None
        self._phase: str | None = None
        self._seen: tuple[Any, ...] | None = None
        self._phase_of: dict[tuple[Any, ...], str] = {}
        """``current_phase`` by what it reads (states, exits, the region, the console); bounded."""

    def restore(self, timeline: Mapping[str, float | None]) -> None:
        self.timeline = dict(timeline)
        self.check_pending = True
        self._key = self._seen = None

    def on_tick(self, now: float) -> list[Change]:
        """Phase deadlines (``phase.stuck``) and restart-storm summaries."""
        b = self.board
        self.phase(now)
        if not b.book.active:
            self._storms.clear()
        elif now >= self._storms_due:
            self._summarize_storms(now)
        clock = self.clock
        if clock is None:
            return []
        changes: list[Change] = []
        if boot.PHASE_SCOPE in b.book.scopes:
            # A phase left behind is no longer stuck, whatever else is known.
            b.book, changes = b.book.resolve_where(
                lambda p: p.finding.scope == boot.PHASE_SCOPE and p.finding.subject != clock.phase, now)
        if not self._deadline_judgeable(clock.phase, now):
            return changes  # a stuck problem carried over a restart stays as it is meanwhile
        limit = boot.deadline_of(clock.phase, b.settings)
        finding: Finding | None = None
        if limit is not None and now - clock.began > limit:
            active = b.book.active.get(("phase.stuck", clock.phase))
            if active is not None and self._stuck_checked_at is not None and \
                    now - self._stuck_checked_at < STUCK_REFRESH_SECONDS:
                return changes  # still stuck; refreshed (how long, evidence) once a minute
            finding = boot.stuck_finding(b.rules, clock, now, b.settings, self._stuck_evidence(clock.phase))
            self._stuck_checked_at = now
        if finding is None and boot.PHASE_SCOPE not in b.book.scopes:
            return changes  # nothing to raise, nothing to resolve
        return changes + b.reconcile(boot.PHASE_SCOPE, [finding] if finding else [], now)

    def _deadline_judgeable(self, phase: str, now: float) -> bool:
        """Not in the first seconds after the listener started (the first API poll and HTTP probe
        are on their way), nor for the console before the probe has had a go at its current run."""
        b = self.board
        if now - b.started_at < STARTUP_SETTLE_SECONDS:
            return False
        if phase == "console" and b.settings.console.probe:
            view = b.processes.get("console")
            if view is not None and view.state == "RUNNING" and (
                b.probed_at is None or view.since is None or b.probed_at < view.since
            ):
                return False
        return True

    def _stuck_evidence(self, phase: str) -> list[str]:
        b = self.board
        tails = [(t.path, t.lines) for t in b.tails_of(phase)] if phase in b.settings.programs else []
        scope_comp = {"images": "images", "region": "region"}.get(phase, phase)
        related = [p for p in b.book.ordered() if p.finding.component in (scope_comp, "node", "host")
                   or p.finding.scope == processes.scope_of(phase)]
        return boot.stuck_evidence(phase, b.processes, b.region, related, list(b.init_lines), tails, b.probe)

    def phase(self, now: float) -> str:
        """The current phase; the timeline and the phase clock brought up to date."""
        b = self.board
        # Nothing read has changed since the last call (a tick, an event of the same state): the
        # views compare equal (most often they are the same objects) and so does the rest.
        seen = (tuple(b.processes.values()), b.layout, b.region, b.probe_ok_at, b.settings, self.check_pending)
        if self._phase is not None and seen == self._seen:
            return self._phase
        phase = self._phase_now(now)
        self._seen = seen
        return phase

    def _phase_now(self, now: float) -> str:
        b = self.board
        answering = boot.console_answering(b.processes.get("console"), b.probe_ok_at, b.settings.console.probe)
        # What the phase depends on: each program's state and how it exited, the region's view,
        # the console's answer.
        facts = (tuple(b.processes), tuple(map(PHASE_FACTS, b.processes.values())))
        region = b.region
        key = (facts, None if region is None else (region.api, region.ready), answering, self.check_pending)
        if key == self._key and self._phase is not None:
            return self._phase  # nothing the phase depends on has changed since the last event
        phase = self._phase_of.get(key)
        if phase is None:
            phase = phases.current_phase(b.processes, b.region, answering)
            if len(self._phase_of) >= PHASES_KEPT:
                self._phase_of.clear()
            self._phase_of[key] = phase
        if phase == self._phase and self._key is not None and key[1:] == self._key[1:]:
            # Only the programs' states changed, not the phase: the timeline and the clock stand.
            self._key = key
            return phase
        if self.check_pending and boot.states_known(b.processes):
            self.timeline = boot.forget_unreached(self.timeline, phase)
            self.check_pending = False
        before = self.timeline  # issue 14: the boot in one line when ready is first reached
        self.timeline = boot.update(self.timeline, phase, now, b.processes, b.region)
        took = boot.boot_took(before, self.timeline, b.started_at, self.clock is None,
                              frozenset(c for c, v in b.processes.items() if v.state == ABSENT))
        if took is not None:
            alerts.ready(took.phases, took.total, took.began_before_watchdog, b.log)
        self.clock = boot.advance(self.clock, phase, self.timeline, now, b.started_at)
        self._key, self._phase = (key[0], key[1], key[2], self.check_pending), phase
        return phase

    def _summarize_storms(self, now: float) -> None:
        """While a program flaps: at most one ``problem_ongoing`` line a minute, with the count
        since the last line (the raise's own line counts one).

        Called by the tick only when a line may be due (``_storms_due``): a problem raised after
        the last look is due a minute after its raise at the earliest, so that look's time plus
        a minute is a safe bound.
        """
        b = self.board
        flapping = {p.key: p for p in b.book.active.values() if p.finding.id == FLAPPING}
        for key in [k for k, (first, _, _) in self._storms.items()
                    if k not in flapping or flapping[k].first_seen != first]:
            del self._storms[key]  # over, or over and raised again since the last look
        due = now + STORM_SUMMARY_SECONDS
        looked, self._storms_looked = self._storms_looked, now
        for key, p in flapping.items():
            # Raised since the last look: its raise was its line (count 1). Else (a restored
            # status file, the first look) counted from now on.
            new = looked is not None and p.first_seen >= looked
            first, last_at, last_count = self._storms.setdefault(key, (p.first_seen, p.first_seen, 1 if new else p.count))
            if now - last_at < STORM_SUMMARY_SECONDS or p.count <= last_count:
                due = min(due, last_at + STORM_SUMMARY_SECONDS)
                continue
            comp = b.component_of.get(p.finding.subject)
            view = b.processes.get(comp) if comp else None
            b.log.warning(
                "problem_ongoing",
                id=p.finding.id,
                subject=p.finding.subject,
                severity=p.finding.severity.value,
                count=p.count,
                new_since_last_line=p.count - last_count,
                first_seen=rfc3339(p.first_seen),
                state=view.state if view else None,
                restarts=view.restarts if view else None,
            )
            self._storms[key] = (first, now, p.count)
        self._storms_due = due
