"""The one place where sources, diagnosis and sinks meet: the listener's event loop.

Per event: read the clock once, turn the event into observations, let the pure diagnosis update
the state, then publish (alerts for what changed, the status file when it changed or the
heartbeat is due). Every event is answered OK, whatever happened while handling it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import deque
from typing import IO, Any, Callable, Mapping

from watchdog import __version__
from watchdog.config import ConfigError, Settings, rule_paths
from watchdog.diagnosis import phases, processes
from watchdog.diagnosis.problems import Change, ProblemBook
from watchdog.diagnosis.rules import RuleBook, evidence_for, load_rule_files
from watchdog.model import (
    PROCESS_COMPONENTS,
    Envelope,
    Finding,
    HostView,
    LogTail,
    ProcessInfo,
    ProcessStateChange,
    ProcessView,
    RegionView,
)
from watchdog.scheduling import BackgroundTask
from watchdog.sinks import alerts
from watchdog.sinks.report import render_text
from watchdog.sinks.status_file import (
    Snapshot,
    StatusUnavailable,
    dumps,
    exit_code,
    read_status,
    render,
    write_atomic,
)
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.logs import read_tail
from watchdog.sources.supervisor_events import EventChannel
from watchdog.sources.supervisor_rpc import RpcUnavailable, SupervisorRpc


class UsageError(Exception):
    """Bad usage or input that a command cannot work with (exit 2)."""


USER_ERRORS = (ConfigError, StatusUnavailable, UsageError)
"""Errors a command reports as one sentence with exit status 2."""

INIT_SCOPE = "init"
INIT_BUFFER_LINES = 200
MIN_WRITE_INTERVAL = 0.25
"""Status file writes are coalesced to at most four a second."""


class Monitor:
    """The watchdog's state and how each kind of observation changes it.

    Edges are injected: the clock, the supervisord RPC client (``None`` when there is none),
    the log reader and the status file writer.
    """

    def __init__(
        self,
        settings: Settings,
        rules: RuleBook,
        *,
        clock: Callable[[], float] = time.time,
        rpc: SupervisorRpc | None = None,
        tail_reader: Callable[[str], LogTail] | None = None,
        writer: Callable[[str, str], None] = write_atomic,
        log: Any = None,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.clock = clock
        self.rpc = rpc
        self.read_tail = tail_reader or (lambda p: read_tail(p, settings.tail_bytes, settings.tail_lines))
        self.writer = writer
        self.log = log or alerts.logger()
        self.started_at = clock()
        self.programs = {comp: p.program for comp, p in settings.programs.items()}
        self.component_of = {prog: comp for comp, prog in self.programs.items()}
        self.processes: dict[str, ProcessView] = {comp: ProcessView() for comp in PROCESS_COMPONENTS}
        self.book = ProblemBook()
        self.timeline: dict[str, float | None] = {}
        self.region = RegionView()
        self.host = HostView()
        self.init_lines: deque[str] = deque(maxlen=INIT_BUFFER_LINES)
        self._last_written: dict[str, Any] | None = None
        self._last_write_at: float | None = None
        self._write_failing = False
        self._last_resync: float | None = None
        self._said_no_rpc = False
        self._pending: list[Change] = []
        """Changes made outside an event's own handling (resync), published with the next batch."""
        self.tasks: list[BackgroundTask[Any]] = []
        """Slow checks (API polls, HTTP probes) run off the event path; see ``wait_background``."""

    # ------------------------------------------------------------------ events

    def handle(self, envelope: Envelope) -> None:
        now = self.clock()
        name = envelope.eventname
        changes: list[Change] = []
        if name.startswith("PROCESS_STATE_"):
            change = proto.process_state_change(envelope)
            if change is not None:
                changes += self.on_state_change(change, now)
        elif name.startswith("TICK_"):
            changes += self.on_tick(now, resync=name == "TICK_60")
        elif name.startswith("PROCESS_LOG"):
            decoded = proto.log_lines(envelope)
            if decoded is not None:
                changes += self.on_log(decoded[0], decoded[1], now)
        changes += self.refresh(now)
        self.publish(changes, now)

    def on_state_change(self, change: ProcessStateChange, now: float) -> list[Change]:
        comp = self.component_of.get(change.name)
        if comp is None:
            return []
        s = self.settings
        view = processes.apply_change(self.processes[comp], change, now, s.flap_window_seconds)
        self.processes[comp] = view
        changes: list[Change] = []
        if processes.is_failure(change):
            info = self._process_info(change.name)
            if info is not None and info.exitstatus is not None and change.to_state == "EXITED":
                self.processes[comp] = dataclasses.replace(self.processes[comp], exitstatus=info.exitstatus)
            tails = [self.read_tail(s.log_path(n)) for n in s.programs[comp].logs]
            findings = processes.failure_findings(self.rules, comp, change.name, change.to_state, info, tails)
            changes += self._raise_process(comp, change.name, findings, now)
        elif change.to_state == "EXITED" and change.expected:
            self.log.info("program_exited_expectedly", program=change.name)
        if change.to_state == "STARTING" and processes.is_flapping(view, now, s.flap_restarts, s.flap_window_seconds):
            starts = len(view.starts)
            finding = self.rules.finding(
                "process.flapping",
                change.name,
                evidence=[f"{change.name} started {starts} times in the last {int(s.flap_window_seconds)} s"],
                source=f"supervisord:{change.name}",
                scope=processes.scope_of(comp),
                details={"starts": str(starts), "window": str(int(s.flap_window_seconds))},
            )
            self.book, raised = self.book.add([finding], now)
            changes += raised
        return changes

    def _raise_process(self, comp: str, program: str, findings: list[Finding], now: float) -> list[Change]:
        self.book, changes = self.book.add(findings, now)
        scope = processes.scope_of(comp)
        generic = (f"{comp}.start-failed", program)
        specific = any(p.finding.severity.value == "error" and p.key != generic for p in self.book.in_scope(scope)
                       if p.finding.id != "process.flapping")
        if specific and generic in self.book.active:
            # A specific cause replaces the generic problem.
            self.book, gone = self.book.resolve_where(lambda p: p.key == generic, now)
            changes += gone
        return changes

    def on_tick(self, now: float, resync: bool = False) -> list[Change]:
        """TICK_5 / TICK_60: resync states, pick up background results, run time-based checks."""
        if resync or self._last_resync is None:
            self.resync(now)
        changes: list[Change] = []
        changes += self.tick_region(now)
        changes += self.tick_host(now)
        changes += self.tick_phases(now)
        return changes

    # ------------------------------------------------------------------ region (issue 4)

    def tick_region(self, now: float) -> list[Change]:
        """Start a k3s API poll when due (off the event path) and apply finished polls."""
        return []

    # ------------------------------------------------------------------ host, console, phases (issue 5)

    def tick_host(self, now: float) -> list[Change]:
        """Free space of the watched paths, the console's HTTP port."""
        return []

    def tick_phases(self, now: float) -> list[Change]:
        """Phase deadlines (``phase.stuck``)."""
        return []

    def on_log(self, program: str, lines: list[str], now: float) -> list[Change]:
        """Output of the image's init program (phase lines, `nerdctl load` errors)."""
        if program in self.component_of or not lines:
            return []
        self.init_lines.extend(lines)
        buffered = list(self.init_lines)
        fresh = buffered[-len(lines) :]
        offset = len(buffered) - len(fresh)
        findings = []
        for m in self.rules.match(fresh, "images"):
            hits = [offset + i for i in m.line_numbers]
            findings.append(
                self.rules.finding(
                    m.rule.id,
                    program,
                    evidence=evidence_for(buffered, hits),
                    source=f"supervisord:{program}",
                    scope=INIT_SCOPE,
                    details={"program": program},
                )
            )
        self.book, changes = self.book.add(findings, now)
        return changes

    # ------------------------------------------------------------------ state

    def resync(self, now: float) -> None:
        """Read every program's real state over XML-RPC (at start and every TICK_60)."""
        self._last_resync = now
        if self.rpc is None:
            if not self._said_no_rpc:
                self.log.warning(
                    "supervisor_rpc_unavailable",
                    reason="SUPERVISOR_SERVER_URL is not set; running on events alone",
                )
                self._said_no_rpc = True
            return
        try:
            infos = self.rpc.all_process_info()
        except RpcUnavailable as e:
            self.log.warning("supervisor_rpc_failed", error=str(e))
            return
        self.processes = processes.views_from_infos(self.processes, infos, self.programs, now)
        self._diagnose_unexplained_failures(infos, now)

    def _diagnose_unexplained_failures(self, infos: list[ProcessInfo], now: float) -> None:
        """A program found failed by a snapshot (the listener restarted, or missed the event)
        is diagnosed like a failure event, unless its scope already has a problem."""
        by_name = {i.name: i for i in infos}
        for comp, program in self.programs.items():
            info = by_name.get(program)
            if info is None or info.state not in ("BACKOFF", "FATAL"):
                continue
            if self.book.in_scope(processes.scope_of(comp)):
                continue
            s = self.settings
            tails = [self.read_tail(s.log_path(n)) for n in s.programs[comp].logs]
            findings = processes.failure_findings(self.rules, comp, program, info.state, info, tails)
            self._pending += self._raise_process(comp, program, findings, now)

    def wait_background(self, timeout: float) -> bool:
        """Wait for every background check in flight (one-shot commands and tests only)."""
        deadline = self.clock() + timeout
        return all(t.wait(max(0.0, deadline - self.clock())) for t in self.tasks)

    def _process_info(self, program: str) -> ProcessInfo | None:
        if self.rpc is None:
            return None
        try:
            return self.rpc.process_info(program)
        except RpcUnavailable as e:
            self.log.warning("supervisor_rpc_failed", error=str(e))
            return None

    def refresh(self, now: float) -> list[Change]:
        """Checks that depend on time alone: resolutions, the init scope."""
        changes: list[Change] = []
        for comp, view in self.processes.items():
            if self.book.in_scope(processes.scope_of(comp)) and processes.stayed_running(
                view, now, self.settings.resolve_after_seconds
            ):
                self.book, gone = self.book.resolve_scope(processes.scope_of(comp), now)
                changes += gone
        if self.book.in_scope(INIT_SCOPE) and phases.begun(self.processes.get("k3s")):
            # k3s starts only after the images are loaded: image-load problems are over.
            self.book, gone = self.book.resolve_scope(INIT_SCOPE, now)
            changes += gone
        return changes

    def apply_findings(self, scope: str, findings: list[Finding], now: float) -> list[Change]:
        """A check's complete current findings for its scope (raise, count, resolve the rest)."""
        self.book, changes = self.book.reconcile(scope, findings, now)
        return changes

    # ------------------------------------------------------------------ output

    def snapshot(self, now: float) -> Snapshot:
        phase = phases.current_phase(self.processes, self.region)
        self.timeline = phases.update_timeline(self.timeline, phase, now)
        return Snapshot(
            generated_at=now,
            version=__version__,
            pid=os.getpid(),
            started_at=self.started_at,
            overall=phases.overall(phase, self.book),
            phase=phase,
            processes=dict(self.processes),
            region=self.region,
            host=self.host,
            timeline=dict(self.timeline),
            problems=tuple(self.book.ordered()),
            resolved=self.book.resolved,
        )

    def document(self, now: float) -> dict[str, Any]:
        return render(self.snapshot(now))

    def publish(self, changes: list[Change], now: float, force: bool = False) -> None:
        if self._pending:
            changes, self._pending = [*self._pending, *changes], []
        if changes:
            alerts.emit(changes, self.settings.languages, self.log)
        doc = self.document(now)
        comparable = {k: v for k, v in doc.items() if k != "generated_at"}
        changed = comparable != self._last_written
        since = None if self._last_write_at is None else now - self._last_write_at
        due = (
            force
            or bool(changes)  # a raise or resolve is written at once; state churn is coalesced
            or since is None
            or (changed and since >= MIN_WRITE_INTERVAL)
            or since >= self.settings.heartbeat_seconds
            or (self._write_failing and since >= 1.0)
        )
        if not due:
            return
        self._last_write_at = now
        try:
            self.writer(self.settings.status_file, dumps(doc))
        except OSError as e:
            if not self._write_failing:
                self.log.error(
                    "status_write_failed",
                    path=self.settings.status_file,
                    error=e.strerror or str(e),
                    note="the previous status file is kept; retrying",
                )
            self._write_failing = True
            return
        if self._write_failing:
            self.log.info("status_write_recovered", path=self.settings.status_file)
            self._write_failing = False
        self._last_written = comparable


def listen(
    settings: Settings,
    rules: RuleBook,
    channel: EventChannel,
    *,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    monitor: Monitor | None = None,
) -> int:
    """The eventlistener loop: READY, read one event, handle it, answer OK; exit 0 at end of input."""
    env = os.environ if env is None else env
    log = alerts.logger()
    rpc = SupervisorRpc.from_environment(env, settings.rpc_timeout_seconds)
    mon = monitor or Monitor(settings, rules, clock=clock, rpc=rpc, log=log)
    log.info("listener_started", version=__version__, config=settings.config_path, supervisor=rpc.url if rpc else None)
    try:
        now = clock()
        mon.resync(now)
        mon.publish(mon.refresh(now), now, force=True)
    except Exception:
        log.exception("startup_check_failed")
    while True:
        channel.ready()
        try:
            envelope = channel.read()
        except proto.ProtocolError as e:
            log.error("protocol_error", error=str(e), note="answered OK and waiting for the next event")
            channel.ok()
            continue
        if envelope is None:
            log.info("listener_stopped", reason="end of input")
            return 0
        try:
            mon.handle(envelope)
        except Exception:
            # FAIL would make supervisord resend the same event forever: log and answer OK.
            log.exception("event_handling_failed", eventname=envelope.eventname)
        finally:
            channel.ok()


# ---------------------------------------------------------------------- commands (called by cli.py)


def load_rulebook(settings: Settings) -> RuleBook:
    return load_rule_files(rule_paths(settings))


def run_listen(settings: Settings) -> int:
    """``rainbond-watchdog listen``: take stdin/stdout for the protocol and run until end of input."""
    alerts.configure()
    return listen(settings, load_rulebook(settings), EventChannel.take_stdio())


def run_status(
    settings: Settings, file: str | None, *, as_json: bool, out: IO[str] | None, now: float | None = None
) -> int:
    """``status`` (``out`` given) and ``check`` (silent): 0 healthy/starting, 1 degraded/failed."""
    path = file or settings.status_file
    doc = read_status(path, time.time() if now is None else now, settings.stale_seconds)
    if out is not None:
        if as_json:
            out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        else:
            out.write(render_text(doc, settings.languages))
    return exit_code(doc)
