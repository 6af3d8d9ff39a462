"""The previous status file read back at listener start: problems keep ``first_seen`` and
``count`` across a listener restart, the resolved list and the timeline are carried over.

The status file is this package's own format, so reading it back lives beside its writer. Each
problem is rebuilt into a ``Problem``; one that cannot be (a field missing or of the wrong type,
a scope that cannot be told) is left out: the checks raise it again if it still holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from watchdog.diagnosis.problems import RESOLVED_KEPT, ProblemBook
from watchdog.model import PROCESS_COMPONENTS, Finding, Problem, Severity, Steps, Texts
from watchdog.sinks.status_file import parse_rfc3339

INIT_SCOPE = "init"
HOST_SCOPE = "host"


@dataclass(frozen=True)
class Restored:
    book: ProblemBook = field(default_factory=ProblemBook)
    timeline: Mapping[str, float | None] = field(default_factory=dict)
    skipped: int = 0
    """Problems of the previous file that could not be rebuilt."""


def restore(doc: Mapping[str, Any], component_of: Mapping[str, str]) -> Restored:
    """Problems, resolved problems and timeline of a status document (already validated by
    ``read_status``); ``component_of`` maps supervisord program names to components."""
    skipped = 0
    active: dict[tuple[str, str], Problem] = {}
    for raw in _list(doc.get("problems")):
        p = problem_from_dict(raw, component_of)
        if p is None or p.resolved_at is not None:
            skipped += 1
            continue
        active[p.key] = p
    resolved: list[Problem] = []
    for raw in _list(doc.get("resolved")):
        p = problem_from_dict(raw, component_of)
        if p is None or p.resolved_at is None:
            skipped += 1
            continue
        resolved.append(p)
    timeline: dict[str, float | None] = {}
    raw_timeline = doc.get("timeline")
    if isinstance(raw_timeline, Mapping):
        for key, value in raw_timeline.items():
            if isinstance(key, str):
                timeline[key] = parse_rfc3339(value)
    book = ProblemBook(active=active, resolved=tuple(resolved[:RESOLVED_KEPT]))
    return Restored(book=book, timeline=timeline, skipped=skipped)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def infer_scope(d: Mapping[str, Any], component_of: Mapping[str, str]) -> str | None:
    """The scope of a problem written without one (by an older listener), when it can be told."""
    pid, subject, component, source = (str(d.get(k, "")) for k in ("id", "subject", "component", "source"))
    if pid == "process.flapping" or component in PROCESS_COMPONENTS or (component == "host" and subject in component_of):
        comp = component_of.get(subject)
        return f"process:{comp}" if comp else None
    if pid.startswith("images.") and source.startswith("supervisord:"):
        return INIT_SCOPE
    if (pid.startswith("host.") or pid.startswith("images.")) and source.startswith("host:"):
        return HOST_SCOPE
    return None


def problem_from_dict(d: Any, component_of: Mapping[str, str]) -> Problem | None:
    if not isinstance(d, Mapping):
        return None
    try:
        summary, steps = d["summary"], d["remediation"]
        finding = Finding(
            id=_str(d["id"]),
            subject=_str(d["subject"]),
            severity=Severity(d["severity"]),
            component=_str(d["component"]),
            summary=Texts(_str(summary["zh"]), _str(summary["en"])),
            remediation=Steps(_strs(steps["zh"]), _strs(steps["en"])),
            evidence=_strs(d.get("evidence", [])),
            source=_str(d.get("source", "")),
            scope=_str(d["scope"]) if d.get("scope") else (infer_scope(d, component_of) or ""),
        )
        count = d.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    first, last = parse_rfc3339(d.get("first_seen")), parse_rfc3339(d.get("last_seen"))
    if not finding.scope or first is None:
        return None
    resolved_at = parse_rfc3339(d.get("resolved_at")) if "resolved_at" in d else None
    if "resolved_at" in d and resolved_at is None:
        return None
    return Problem(finding=finding, first_seen=first, last_seen=last or first, count=count, resolved_at=resolved_at)


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(v)
    return v


def _strs(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise TypeError(v)
    return tuple(_str(x) for x in v)
