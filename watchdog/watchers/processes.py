"""supervisord's programs: their states, what a failure means, flapping, and the resync over XML-RPC.

Scopes: ``process:<component>`` (failures, flapping) and ``logs:<component>`` (``diagnose``
without supervisord). It also decides the image layout from supervisord's programs (issue 9).
"""
from __future__ import annotations

from watchdog.diagnosis import layouts, processes
from watchdog.diagnosis.problems import Change
from watchdog.diagnosis.rules import evidence_for
from watchdog.model import PROCESS_COMPONENTS, UNKNOWN, Finding, ProcessInfo, ProcessStateChange
from watchdog.sources.supervisor_rpc import RpcUnavailable, SupervisorRpc
from watchdog.watchers.base import Board, Watcher

FLAP_FINDINGS_KEPT = 64
"""Flapping findings kept for reuse (programs × start counts: a handful)."""


class ProcessesWatcher(Watcher):
    name = "processes"

    def __init__(self, board: Board, rpc: SupervisorRpc | None) -> None:
        super().__init__(board)
        self.rpc = rpc
        self.last_resync: float | None = None
        self._said_no_rpc = False
        self._layout_said = False
        self._flap_findings: dict[tuple[str, int], Finding] = {}
        self._scope_of = {comp: processes.scope_of(comp) for comp in PROCESS_COMPONENTS}
        self._scopes_seen: frozenset[str] | None = None
        self._with_problems: list[tuple[str, str]] = []
        """The programs whose scope holds a problem, in ``_scopes_seen`` (the book's scopes)."""

    # ---------------------------------------------------------------- events

    def on_state_change(self, change: ProcessStateChange, now: float) -> list[Change]:
        b = self.board
        comp = b.component_of.get(change.name)
        if comp is None:
            return []
        s = b.settings
        view = processes.apply_change(b.processes[comp], change, now, s.flap_window_seconds, s.flap_restarts)
        b.processes[comp] = view
        to_state = change.to_state
        if to_state == "RUNNING":
            return []  # the commonest event: nothing is raised by a start that succeeded
        if to_state == "STARTING":
            # apply_change kept the starts within the window at ``now``: their number tells.
            if len(view.starts) < s.flap_restarts:
                return []
            b.book, raised = b.book.count(self._flapping(comp, change.name, len(view.starts)), now)
            return raised
        changes: list[Change] = []
        if processes.is_failure(change):
            info = self.process_info(change.name)
            if info is not None and info.exitstatus is not None and change.to_state == "EXITED":
                b.processes[comp] = b.processes[comp]._replace(exitstatus=info.exitstatus)
            findings = processes.failure_findings(b.rules, comp, change.name, change.to_state, info, b.tails_of(comp))
            changes += self.raise_process(comp, change.name, findings, now)
        elif change.to_state == "EXITED" and change.expected and not processes.is_flapping(
            view, now, s.flap_restarts, s.flap_window_seconds
        ):
            # Not while it flaps: a restart storm gets one line per cause (the boot watcher's storms).
            b.log.info("program_exited_expectedly", program=change.name)
        return changes

    def _flapping(self, comp: str, program: str, starts: int) -> Finding:
        """``process.flapping``, built once per program and count: a restart storm repeats it at
        every start, and building a finding (texts filled, evidence redacted) is an event's main cost."""
        key = (program, starts)
        finding = self._flap_findings.get(key)
        if finding is None:
            window = int(self.board.settings.flap_window_seconds)
            finding = self.board.rules.finding(
                "process.flapping",
                program,
                evidence=[f"{program} started {starts} times in the last {window} s"],
                source=f"supervisord:{program}",
                scope=processes.scope_of(comp),
                details={"starts": str(starts), "window": str(window)},
            )
            if len(self._flap_findings) >= FLAP_FINDINGS_KEPT:
                self._flap_findings.clear()
            self._flap_findings[key] = finding
        return finding

    def raise_process(self, comp: str, program: str, findings: list[Finding], now: float) -> list[Change]:
        b = self.board
        changes = b.add(findings, now)
        scope = processes.scope_of(comp)
        generic = (f"{comp}.start-failed", program)
        specific = any(p.finding.severity.value == "error" and p.key != generic for p in b.book.in_scope(scope)
                       if p.finding.id != "process.flapping")
        if specific and generic in b.book.active:
            # A specific cause replaces the generic problem.
            b.book, gone = b.book.resolve_where(lambda p: p.key == generic, now)
            changes += gone
        return changes

    def on_tick(self, now: float) -> list[Change]:
        if self.last_resync is None:  # later resyncs come with TICK_60 (the dispatcher)
            self.resync(now)
        return []

    def refresh(self, now: float) -> list[Change]:
        """A program that stayed RUNNING long enough has its problems resolved."""
        b = self.board
        changes: list[Change] = []
        if not b.book.active:
            return changes
        scopes = b.book.scopes
        if scopes is not self._scopes_seen:  # a count keeps the book's scopes: a storm looks once
            self._scopes_seen = scopes
            self._with_problems = [(comp, scope) for comp, scope in self._scope_of.items() if scope in scopes]
        if not self._with_problems:
            return changes  # no program has a problem (this runs after every event)
        after = b.settings.resolve_after_seconds
        views = b.processes
        for comp, scope in self._with_problems:
            view = views[comp]  # stayed RUNNING long enough (inlined: this runs after every event)
            if view.state == "RUNNING" and view.since is not None and now - view.since >= after:
                changes += b.resolve_scope(scope, now)
        return changes

    # ---------------------------------------------------------------- supervisord over XML-RPC

    def resync(self, now: float) -> None:
        """Read every program's real state over XML-RPC (at start and every TICK_60)."""
        b = self.board
        self.last_resync = now
        if self.rpc is None:
            if not self._said_no_rpc:
                b.log.warning("supervisor_rpc_unavailable",
                              reason="SUPERVISOR_SERVER_URL is not set; running on events alone")
                self._said_no_rpc = True
            return
        try:
            infos = self.rpc.all_process_info()
        except RpcUnavailable as e:
            b.log.warning("supervisor_rpc_failed", error=str(e))
            return
        self.relayout(layouts.resolve(b.base_settings.layout, [i.name for i in infos]))  # issue 9
        b.processes = processes.views_from_infos(b.processes, infos, b.programs, now)
        self._diagnose_unexplained_failures(infos, now)

    def relayout(self, layout: str) -> None:
        """issue 9: run with ``layout`` (what supervisord's programs tell, or the configured one); said once."""
        b = self.board
        if b.set_layout(layout):
            self._layout_said = False
        if not self._layout_said:
            b.log.info("layout", layout=layout, configured=b.base_settings.layout,
                       runtime=b.programs["containerd"] or None, k3s_logs=list(b.settings.programs["k3s"].logs))
            self._layout_said = True

    def reached(self) -> bool:
        """Whether supervisord answered (a resync filled in the programs' states)."""
        return self.rpc is not None and any(v.state != UNKNOWN for v in self.board.processes.values())

    def _diagnose_unexplained_failures(self, infos: list[ProcessInfo], now: float) -> None:
        """A program found failed by a snapshot (the listener restarted, or missed the event)
        is diagnosed like a failure event, unless its scope already has a problem."""
        b = self.board
        by_name = {i.name: i for i in infos}
        for comp, program in b.programs.items():
            info = by_name.get(program)
            if info is None or info.state not in ("BACKOFF", "FATAL"):
                continue
            if b.book.in_scope(processes.scope_of(comp)):
                continue
            findings = processes.failure_findings(b.rules, comp, program, info.state, info, b.tails_of(comp))
            b.pending += self.raise_process(comp, program, findings, now)

    def process_info(self, program: str) -> ProcessInfo | None:
        if self.rpc is None:
            return None
        try:
            return self.rpc.process_info(program)
        except RpcUnavailable as e:
            self.board.log.warning("supervisor_rpc_failed", error=str(e))
            return None

    # ---------------------------------------------------------------- without supervisord

    def scan_program_logs(self, now: float) -> list[Change]:
        """``diagnose`` outside supervisord: run the log rules over each program's log tail."""
        b = self.board
        findings: list[Finding] = []
        for comp, p in b.settings.programs.items():
            for tail in b.tails_of(comp):
                lines = list(tail.lines)
                for m in b.rules.match(lines, comp):
                    if any(f.id == m.rule.id and f.source == tail.path for f in findings):
                        continue  # issue 9: k3s also reads the runtime's log; one problem per cause and log
                    findings.append(b.rules.finding(
                        m.rule.id, p.program, evidence=evidence_for(lines, list(m.line_numbers)),
                        source=tail.path, scope=f"logs:{comp}", details={"program": p.program},
                        component=comp if comp in m.rule.components else None,  # issue 9: as for a failure event
                    ))
        return b.add(findings, now)
