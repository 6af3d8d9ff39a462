"""The problems' lifecycle: raise once, count after, resolve when the cause is gone."""
from __future__ import annotations

import dataclasses

import pytest

from watchdog.diagnosis.problems import RESOLVED_KEPT, ProblemBook
from watchdog.model import Finding, Problem, Severity, Steps, Texts


def finding(pid: str = "k3s.start-failed", subject: str = "k3s", severity: Severity = Severity.ERROR,
            scope: str = "process:k3s") -> Finding:
    return Finding(pid, subject, severity, "k3s", Texts("z", "e"), Steps(("z",), ("e",)), scope=scope)


def test_raised_once_then_counted() -> None:
    book, changes = ProblemBook().add([finding()], 10.0)
    assert [c.kind for c in changes] == ["raised"]
    book, changes = book.add([finding()], 20.0)
    assert changes == []
    (p,) = book.active.values()
    assert (p.first_seen, p.last_seen, p.count) == (10.0, 20.0, 2)


def test_same_id_other_subject_is_another_problem() -> None:
    book, changes = ProblemBook().add([finding(subject="a"), finding(subject="b")], 1.0)
    assert len(changes) == 2 and len(book.active) == 2


def test_reconcile_resolves_what_the_scope_no_longer_sees() -> None:
    book, _ = ProblemBook().add([finding("region.pod-pending", "rbd-db-0", scope="region"),
                                 finding("k3s.start-failed", "k3s")], 1.0)
    book, changes = book.reconcile("region", [], 5.0)
    assert [(c.kind, c.problem.finding.id) for c in changes] == [("resolved", "region.pod-pending")]
    assert list(book.active) == [("k3s.start-failed", "k3s")]  # other scopes untouched
    assert book.resolved[0].resolved_at == 5.0


def test_resolved_keeps_the_last_twenty_newest_first() -> None:
    book = ProblemBook()
    for i in range(RESOLVED_KEPT + 5):
        book, _ = book.add([finding(subject=f"s{i}")], float(i))
        book, _ = book.resolve_scope("process:k3s", float(i) + 0.5)
    assert len(book.resolved) == RESOLVED_KEPT
    assert book.resolved[0].finding.subject == f"s{RESOLVED_KEPT + 4}"


def test_ordered_puts_errors_first_then_oldest() -> None:
    book, _ = ProblemBook().add([finding("host.disk-low", "/app/data", Severity.WARNING, "host")], 1.0)
    book, _ = book.add([finding("k3s.start-failed", "k3s")], 2.0)
    book, _ = book.add([finding("console.start-failed", "console")], 3.0)
    assert [p.finding.id for p in book.ordered()] == ["k3s.start-failed", "console.start-failed", "host.disk-low"]


def test_scopes_follow_the_active_problems_through_counts_raises_and_resolves() -> None:
    def truth(b: ProblemBook) -> frozenset[str]:
        return frozenset(p.finding.scope for p in b.active.values())

    book, _ = ProblemBook().add([finding()], 1.0)
    assert book.scopes == {"process:k3s"}
    book, _ = book.add([finding()], 2.0)  # a count: carried over, still true
    assert "scopes" in book.__dict__ and book.scopes == truth(book)
    book, _ = book.add([finding("region.pod-pending", "rbd-db-0", scope="region")], 3.0)
    assert book.scopes == truth(book) == {"process:k3s", "region"}
    book, _ = book.resolve_scope("process:k3s", 4.0)
    assert book.scopes == truth(book) == {"region"}
    assert book.in_scope("process:k3s") == [] and len(book.in_scope("region")) == 1


def test_a_count_builds_the_same_book_and_problem_as_the_constructors() -> None:
    """The count's fast construction (no frozen ``__init__``) gives ordinary, equal objects."""
    book, _ = ProblemBook().add([finding()], 1.0)
    counted, changes = book.add([finding()], 2.0)
    assert changes == [] and type(counted) is ProblemBook
    p = counted.active[finding().key]
    assert p == Problem(finding(), 1.0, 2.0, 2) and hash(p) == hash(Problem(finding(), 1.0, 2.0, 2))
    assert counted == ProblemBook(dict(counted.active), counted.resolved)
    assert book.active[finding().key].count == 1  # the book counted from is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        counted.resolved = ()  # type: ignore[misc]


def test_count_is_add_of_one_finding() -> None:
    """``count`` raises what is new and counts what is active, exactly as ``add`` does."""
    book, _ = ProblemBook().add([finding()], 1.0)
    for f, now in ((finding(), 2.0), (finding("process.flapping", scope="process:k3s"), 3.0), (finding(), 4.0)):
        added, added_changes = book.add([f], now)
        counted, counted_changes = book.count(f, now)
        assert counted == added and counted_changes == added_changes
        assert counted.scopes == added.scopes == frozenset({p.finding.scope for p in added.active.values()})
        book = counted
    assert book.active[finding().key].count == 3 and len(book.active) == 2
