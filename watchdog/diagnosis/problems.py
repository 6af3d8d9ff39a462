"""The problems' lifecycle: raised once, counted after, resolved when the cause is gone.

A pure, immutable book: every operation returns a new book and the changes it made, so that the
app can send exactly one alert per raise and per resolve. Problems are keyed by (id, subject).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable, Literal, Mapping

from watchdog.model import Finding, Problem

RESOLVED_KEPT = 20


@dataclass(frozen=True)
class Change:
    kind: Literal["raised", "resolved"]
    problem: Problem


Key = tuple[str, str]


@dataclass(frozen=True)
class ProblemBook:
    active: Mapping[Key, Problem] = field(default_factory=dict)
    resolved: tuple[Problem, ...] = ()
    """The last problems that ended, newest first."""

    def add(self, findings: Iterable[Finding], now: float) -> tuple[ProblemBook, list[Change]]:
        """Raise new findings, count the ones already active."""
        findings = list(findings)
        if not findings:
            return self, []
        active = dict(self.active)
        changes: list[Change] = []
        for f in findings:
            old = active.get(f.key)
            if old is None:
                p = Problem(finding=f, first_seen=now, last_seen=now)
                active[f.key] = p
                changes.append(Change("raised", p))
            else:
                active[f.key] = old.seen_again(f, now)
        if changes:
            return ProblemBook(active, self.resolved), changes
        return self._counted(active), changes

    def count(self, finding: Finding, now: float) -> tuple[ProblemBook, list[Change]]:
        """``add([finding], now)``, shorter for the usual case of a restart storm: the problem
        is active already and is counted once more."""
        old = self.active.get(finding.key)
        if old is None:
            return self.add([finding], now)
        active = dict(self.active)
        active[finding.key] = old.seen_again(finding, now)
        return self._counted(active), []

    def _counted(self, active: dict[Key, Problem]) -> ProblemBook:
        """This book with ``active`` holding the same keys, counted again (a restart storm's
        every start): built without the frozen ``__init__``, the scopes carried over."""
        book = object.__new__(ProblemBook)
        book.__dict__.update(self.__dict__)
        book.__dict__["active"] = active
        return book

    def resolve_where(self, predicate: Callable[[Problem], bool], now: float) -> tuple[ProblemBook, list[Change]]:
        """Resolve every active problem the predicate picks."""
        gone = [p for p in self.active.values() if predicate(p)]
        if not gone:
            return self, []
        ended = [dataclasses.replace(p, resolved_at=now) for p in gone]
        active = {k: p for k, p in self.active.items() if not predicate(p)}
        resolved = (*reversed(ended), *self.resolved)[:RESOLVED_KEPT]
        return ProblemBook(active, resolved), [Change("resolved", p) for p in ended]

    def resolve_scope(self, scope: str, now: float) -> tuple[ProblemBook, list[Change]]:
        return self.resolve_where(lambda p: p.finding.scope == scope, now)

    def reconcile(self, scope: str, findings: Iterable[Finding], now: float) -> tuple[ProblemBook, list[Change]]:
        """Make the scope's active problems exactly ``findings``: raise, count, resolve the rest."""
        current = list(findings)
        keys = {f.key for f in current}
        book, raised = self.add(current, now)
        book, resolved = book.resolve_where(lambda p: p.finding.scope == scope and p.key not in keys, now)
        return book, raised + resolved

    def in_scope(self, scope: str) -> list[Problem]:
        if scope not in self.scopes:
            return []
        return [p for p in self.active.values() if p.finding.scope == scope]

    @cached_property
    def scopes(self) -> frozenset[str]:
        """The scopes that hold an active problem (computed once per book: books are immutable),
        so that "anything in this scope?" costs a set lookup on every event."""
        return frozenset({p.finding.scope for p in self.active.values()})

    def ordered(self) -> list[Problem]:
        """Active problems, most severe first, then oldest first, then by id and subject."""
        return sorted(
            self.active.values(),
            key=lambda p: (p.finding.severity.rank, p.first_seen, p.finding.id, p.finding.subject),
        )
