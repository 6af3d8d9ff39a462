"""supervisord programs: their state from events and snapshots, and what a failure means.

Pure: state changes and infos in, views and findings out; the app does the reading.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from watchdog.diagnosis.exit_status import explain_exit
from watchdog.diagnosis.rules import RuleBook, evidence_for
from watchdog.model import (
    ABSENT,
    Finding,
    LogTail,
    ProcessInfo,
    ProcessStateChange,
    ProcessView,
    Severity,
    process_view,
)

TAIL_EVIDENCE_LINES = 15
"""Lines from the end of a log quoted in a generic ``*.start-failed``."""


def scope_of(component: str) -> str:
    return f"process:{component}"


def apply_change(view: ProcessView, change: ProcessStateChange, now: float, window: float, keep: int) -> ProcessView:
    """The program's view after a ``PROCESS_STATE_*`` event.

    Of the start times only the last ``keep`` (``flap_restarts``) within ``window`` are kept: that
    is all ``is_flapping`` needs, and the work per event stays the same however long the stream.
    """
    starts = view.starts
    restarts = view.restarts
    if change.to_state == "STARTING":
        if change.from_state in ("BACKOFF", "EXITED", "FATAL", "UNKNOWN") or view.starts:
            restarts += 1
        kept = starts[-(keep - 1) :] if keep > 1 else ()
        if not kept or now - min(kept) <= window:
            starts = (*kept, now)  # all within the window (a storm): nothing to drop
        else:
            starts = tuple([t for t in (*kept, now) if now - t <= window])
    running = change.to_state in ("RUNNING", "STARTING", "STOPPING")
    return process_view(  # built whole, every field decided here, given in order (a call by keywords costs more)
        change.to_state,  # state
        now,  # since
        change.pid if running and change.pid else (view.pid if running else None),  # pid
        view.exitstatus,
        restarts,
        starts,
        change.expected if change.to_state == "EXITED" else None,  # expected
    )


def apply_info(view: ProcessView, info: ProcessInfo | None, now: float) -> ProcessView:
    """The program's view after a supervisord snapshot (``None``: no such program)."""
    if info is None:
        return view._replace(state=ABSENT, since=view.since if view.state == ABSENT else now, pid=None)
    since = view.since
    if info.state != view.state or since is None:
        since = info.start if info.state == "RUNNING" and info.start else (info.stop or now)
    return view._replace(
        state=info.state,
        since=since,
        pid=info.pid if info.state in ("RUNNING", "STARTING", "STOPPING") else None,
        exitstatus=info.exitstatus if info.state == "EXITED" else view.exitstatus,
        expected=view.expected if info.state == view.state == "EXITED" else None,
    )


def is_failure(change: ProcessStateChange) -> bool:
    """EXITED when not expected, BACKOFF, FATAL (and UNKNOWN, supervisord's own confusion)."""
    if change.to_state in ("BACKOFF", "FATAL", "UNKNOWN"):
        return True
    return change.to_state == "EXITED" and change.expected is False


def is_flapping(view: ProcessView, now: float, restarts: int, window: float) -> bool:
    return len([t for t in view.starts if now - t <= window]) >= restarts


def failure_findings(
    rules: RuleBook,
    component: str,
    program: str,
    state: str,
    info: ProcessInfo | None,
    tails: Sequence[LogTail],
) -> list[Finding]:
    """What a failed program's end of log says: specific problems, else ``<component>.start-failed``.

    The seam for the rules: every rule that applies to the component runs over each log's tail.
    A matched rule of severity ``error`` is a specific cause and replaces the generic problem;
    warnings and infos are raised beside it.
    """
    scope = scope_of(component)
    findings: list[Finding] = []
    for tail in tails:
        for m in rules.match(tail.lines, component):
            findings.append(
                rules.finding(
                    m.rule.id,
                    program,
                    evidence=evidence_for(tail.lines, m.line_numbers),
                    source=tail.path,
                    scope=scope,
                    component=component if component in m.rule.components else None,
                    details={"program": program, "state": state},
                )
            )
    findings = _dedupe(findings)
    if any(f.severity is Severity.ERROR for f in findings):
        return findings
    return [generic_failure(rules, component, program, state, info, tails), *findings]


def generic_failure(
    rules: RuleBook, component: str, program: str, state: str, info: ProcessInfo | None, tails: Sequence[LogTail]
) -> Finding:
    # supervisord clears exitstatus when a program exits before `startsecs` (BACKOFF, then
    # FATAL) and getProcessInfo then reports 0: only an EXITED program has a real one.
    exitstatus = info.exitstatus if info and state == "EXITED" else None
    meaning = explain_exit(exitstatus)
    evidence: list[str] = [f"supervisord: {program} is {state}" + (f" ({info.description})" if info and info.description else "")]
    if info and info.spawnerr:
        evidence.append(f"spawnerr: {info.spawnerr}")
    if meaning is not None and exitstatus is not None:
        evidence.append(f"exit status {exitstatus}: {meaning.en}")
    for tail in tails:
        evidence.extend(f"[{tail.path}] {n}" for n in tail.notes)
    evidence.extend(_tail_evidence(tails, max(0, 20 - len(evidence))))
    return rules.finding(
        f"{component}.start-failed",
        program,
        evidence=evidence,
        source=tails[0].path if tails else "",
        scope=scope_of(component),
        details={
            "program": program,
            "state": state,
            "exit_zh": f"，退出码 {exitstatus}：{meaning.zh}" if meaning else "",
            "exit_en": f", exit status {exitstatus}: {meaning.en}" if meaning else "",
        },
    )


def _tail_evidence(tails: Sequence[LogTail], budget: int) -> list[str]:
    """The last lines of each log, in order, the budget shared fairly: a long second log (k3s's
    runtime log, the console's error log) does not crowd out the first."""
    with_lines = [t for t in tails if t.lines]
    out: list[str] = []
    for i, tail in enumerate(with_lines):
        share = min(TAIL_EVIDENCE_LINES, -(-(budget - len(out)) // (len(with_lines) - i)))  # the first gets the odd one
        out.extend(tail.lines[-share:] if share > 0 else [])
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (id, subject): evidence of several logs joined."""
    by_key: dict[tuple[str, str], Finding] = {}
    for f in findings:
        old = by_key.get(f.key)
        by_key[f.key] = f if old is None else dataclasses.replace(old, evidence=(old.evidence + f.evidence)[-20:])
    return list(by_key.values())


def views_from_infos(
    views: Mapping[str, ProcessView], infos: Sequence[ProcessInfo], programs: Mapping[str, str], now: float
) -> dict[str, ProcessView]:
    """Every watched component after a ``getAllProcessInfo`` snapshot; missing programs are ABSENT."""
    by_name = {i.name: i for i in infos}
    return {comp: apply_info(views.get(comp, ProcessView()), by_name.get(prog), now) for comp, prog in programs.items()}
