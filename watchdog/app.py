"""The one place where sources, diagnosis and sinks meet: the listener's event loop.

Per event: read the clock once, turn the event into observations, let the pure diagnosis update
the state, then publish (alerts for what changed, the status file when it changed or the
heartbeat is due). Every event is answered OK, whatever happened while handling it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections import deque
from typing import IO, Any, Callable, Mapping

from watchdog import __version__
from watchdog.config import KubeSettings, Settings, rule_paths
from watchdog.diagnosis import host as host_checks
from watchdog.diagnosis import layouts, phases, processes, reach
from watchdog.diagnosis import region as region_diag
from watchdog.diagnosis import timeline as boot
from watchdog.diagnosis.problems import Change, ProblemBook
from watchdog.diagnosis.rules import RuleBook, evidence_for, load_rule_file, load_rule_files
from watchdog.diagnosis.scanning import Explained
from watchdog.errors import UsageError
from watchdog.explaining import explain_stream
from watchdog.model import (
    ABSENT,
    PROCESS_COMPONENTS,
    UNKNOWN,
    Envelope,
    EventObs,
    Finding,
    HostSample,
    HostView,
    LogTail,
    PodDetail,
    ProbeResult,
    ProcessInfo,
    ProcessStateChange,
    ProcessView,
    RegionPoll,
    RegionView,
)
from watchdog.scheduling import BackgroundTask, Outcome
from watchdog.sinks import alerts
from watchdog.sinks.explanation import explanation_json, explanation_text, rules_text
from watchdog.sinks.npd_export import SOURCES as NPD_SOURCES
from watchdog.sinks.npd_export import export_npd, write_export
from watchdog.sinks.report import render_text
from watchdog.sinks.status_file import (
    Snapshot,
    StatusUnavailable,
    dumps,
    exit_code,
    read_status,
    remove_stale_temporaries,
    render,
    rfc3339,
    write_atomic,
)
from watchdog.sinks.status_restore import restore
from watchdog.sources import kube
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.console_probe import probe as probe_console
from watchdog.sources.host import HostReader
from watchdog.sources.logs import LogUnreadable, modified_times, open_log, read_tail
from watchdog.sources.supervisor_events import EventChannel
from watchdog.sources.supervisor_parent import parent_process
from watchdog.sources.supervisor_rpc import RpcUnavailable, SupervisorRpc

INIT_SCOPE = "init"
INIT_BUFFER_LINES = 200
MIN_WRITE_INTERVAL = 0.25
"""Status file writes are coalesced to at most four a second."""
STORM_SUMMARY_SECONDS = 60.0
"""While a program flaps, at most one ``problem_ongoing`` line this often."""
STUCK_REFRESH_SECONDS = 60.0
"""A stuck phase's problem (how long, evidence) is refreshed this often."""
STARTUP_SETTLE_SECONDS = 30.0
"""Phase deadlines are not judged this soon after the listener started (first poll and probe on their way)."""


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
        host_sampler: Callable[[], HostSample] | None = None,
        console_prober: Callable[[], ProbeResult] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.clock = clock
        self.rpc = rpc
        self.read_tail = tail_reader or (lambda p: read_tail(p, settings.tail_bytes, settings.tail_lines))
        self.writer = writer
        self.log = log or alerts.logger()
        self.started_at = clock()
        # issue 9: the image layout decides the runtime program and k3s's logs (diagnosis/layouts.py)
        self.base_settings, self.layout, self._layout_said = settings, layouts.resolve(settings.layout, None), False
        settings = self.settings = layouts.settings_for(settings, self.layout)
        self.programs = {comp: p.program for comp, p in settings.programs.items()}
        self.component_of = {prog: comp for comp, prog in self.programs.items() if prog}  # issue 9: embedded has no runtime
        self.processes: dict[str, ProcessView] = {comp: ProcessView() for comp in PROCESS_COMPONENTS}
        self.processes = layouts.views_for(self.processes, self.layout)  # issue 9
        self.book = ProblemBook()
        self.timeline: dict[str, float | None] = {}
        self.region = RegionView()
        self.host = HostView()
        self.init_lines: deque[str] = deque(maxlen=INIT_BUFFER_LINES)
        self._last_written: dict[str, Any] | None = None
        self._last_write_at: float | None = None
        self._last_render_at: float | None = None
        self._phase_key: tuple[Any, ...] | None = None
        self._phase_cached: str | None = None
        self._write_failing = False
        self._last_resync: float | None = None
        self._said_no_rpc = False
        self._pending: list[Change] = []
        """Changes made outside an event's own handling (resync), published with the next batch."""
        self.tasks: list[BackgroundTask[Any]] = []
        """Slow checks (API polls, HTTP probes) run off the event path; see ``wait_background``."""
        self._init_boot_checks(host_sampler, console_prober)

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
        elif change.to_state == "EXITED" and change.expected and not processes.is_flapping(
            view, now, s.flap_restarts, s.flap_window_seconds
        ):
            # Not while it flaps: a restart storm gets one line per cause (see _summarize_storms).
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

    def _with_host_facts(self, findings: list[Finding]) -> list[Finding]:  # issue 12:
        """Log findings whose line has several causes (a mount or sysctl denied), decided with the host sample."""
        return host_checks.with_host_facts(self.rules, findings, self._host_sample, self.settings.host)

    def _raise_process(self, comp: str, program: str, findings: list[Finding], now: float) -> list[Change]:
        self.book, changes = self.book.add(self._with_host_facts(findings), now)  # issue 12:
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

    kube_env: Mapping[str, str] = os.environ
    """Where ``$KUBECONFIG`` is looked up (the fallback after ``kubernetes.kubeconfig``)."""
    region_assume_up = False
    """``diagnose`` without supervisord: k3s's state is unknown, judge the API without its grace."""
    region_memory = region_diag.RegionMemory()
    _kube: kube.KubeClient | None = None
    _region_task: BackgroundTask[RegionPoll] | None = None
    _region_api_said = ""

    def tick_region(self, now: float) -> list[Change]:
        """Start a k3s API poll when due (off the event path) and apply finished polls.

        Root cause first: while containerd or k3s is down (or k3s has written no kubeconfig yet)
        the region is "not started" and is not diagnosed; its problems are resolved, the
        process problems explain the rest.
        """
        k3s = self.processes.get("k3s", ProcessView())
        containerd = self.processes.get("containerd", ProcessView())
        down = k3s.state not in ("RUNNING", UNKNOWN) or containerd.state not in ("RUNNING", ABSENT, UNKNOWN)
        path = None if down else kube.find_kubeconfig(self.settings.kubernetes.kubeconfig, self.kube_env)
        changes: list[Change] = []
        task = self._region_task
        if down or path is None:
            if task is not None:
                task.take()  # a poll that started before k3s went down says nothing now
            self.region = RegionView(api="not-started")
            changes += self.apply_findings(region_diag.API_SCOPE, [], now)
            changes += self.apply_findings(region_diag.PODS_SCOPE, [], now)
            self._say_region_api("not-started")
            return changes
        if task is None:
            task = BackgroundTask("region", self._poll_region, self.settings.kubernetes.poll_seconds, self.clock)
            self._region_task = task
            self.tasks.append(task)
        for outcome in task.take():
            changes += self._apply_region_poll(outcome, now)
        task.maybe_start(now)
        return changes

    def _poll_region(self) -> RegionPoll:
        """One poll (in the background thread): pods and nodes, then details of the pods that look wrong."""
        k = self.settings.kubernetes
        started = self.clock()
        path = kube.find_kubeconfig(k.kubeconfig, self.kube_env)
        if path is None:
            return RegionPoll(started, self.clock(), error="kubeconfig: no kubeconfig file (yet)")
        client = self._kube
        if client is None or client.kubeconfig != path or client.stale():
            if client is not None:
                client.close()
            client = self._kube = kube.KubeClient(path, k.timeout_seconds)
        before = client.requests
        deadline = time.monotonic() + k.timeout_seconds
        try:
            client.prepare()
            deadline = time.monotonic() + k.timeout_seconds
            pods = client.list_pods(k.namespace, deadline)
            nodes = client.list_nodes(deadline)
        except kube.ApiUnavailable as e:
            client.close()  # drop connections a hung or closed server left behind
            return RegionPoll(started, self.clock(), error=str(e), requests=client.requests - before)
        details: dict[str, PodDetail] = {}
        for name, container in region_diag.needs_detail(pods, self.region_memory, self.clock(), k):
            notes: list[str] = []
            events: tuple[EventObs, ...] = ()
            lines: tuple[str, ...] = ()
            try:
                events = client.pod_events(k.namespace, name, deadline)
            except kube.DetailUnavailable as e:
                notes.append(str(e))
            if container:
                try:
                    lines = client.previous_log(k.namespace, name, container, k.log_tail_lines, deadline)
                except kube.DetailUnavailable as e:
                    notes.append(str(e))
            details[name] = PodDetail(events, container, lines, tuple(notes))
        return RegionPoll(started, self.clock(), pods=pods, nodes=nodes, details=details,
                          requests=client.requests - before)

    def _apply_region_poll(self, outcome: Outcome[RegionPoll], now: float) -> list[Change]:
        k = self.settings.kubernetes
        poll = outcome.value
        if poll is None:
            self.log.error("region_poll_crashed", error=repr(outcome.error))
            poll = RegionPoll(outcome.started, outcome.finished, error=f"internal error: {outcome.error!r}")
        if poll.error:
            reason = poll.error.split(":", 1)[0]
            self.region = region_diag.unreachable_view(self.region, reason)
            self._say_region_api(self.region.api, error=poll.error)
            k3s = self.processes["k3s"]
            since = k3s.since if k3s.state == "RUNNING" and k3s.since is not None else self.started_at
            if not self.region_assume_up and now - since < k.api_grace_seconds:
                return []  # k3s is still starting: not a problem yet
            finding = self.rules.finding(
                "region.api-unreachable", "k3s-api",
                evidence=[poll.error, f"kubeconfig: {self._kube.kubeconfig if self._kube else '?'}"],
                source="k8s:api", scope=region_diag.API_SCOPE, details={"reason": poll.error},
            )
            # While the API is unreachable, pod problems are neither raised nor resolved.
            return self.apply_findings(region_diag.API_SCOPE, [finding], now)
        k3s = self.processes["k3s"]
        region_since = k3s.since if k3s.state == "RUNNING" else None
        result = region_diag.analyse(self.rules, poll, self.region_memory, now, k, region_since)
        self.region = result.view
        self.region_memory = result.memory
        self._say_region_api("ok", requests=poll.requests, seconds=round(poll.finished - poll.started, 3))
        changes = self.apply_findings(region_diag.API_SCOPE, [], now)
        changes += self.apply_findings(region_diag.PODS_SCOPE, list(result.findings), now)
        return changes

    def region_poll_overdue(self, now: float, waited: float) -> list[Change]:
        """``diagnose`` waited long enough: a poll still in flight counts as an API that timed out."""
        task = self._region_task
        if task is None or not task.busy:
            return []
        poll = RegionPoll(now - waited, now, error=f"timeout: the API did not answer within {waited:g} s")
        return self._apply_region_poll(Outcome(poll, None, now - waited, now), now)

    def rpc_reached(self, now: float) -> bool:
        """Whether supervisord answered (a resync filled in the programs' states)."""
        return self.rpc is not None and any(v.state != UNKNOWN for v in self.processes.values())

    def scan_program_logs(self, now: float) -> list[Change]:
        """Without supervisord (``diagnose`` outside it): run the log rules over each program's log tail."""
        s = self.settings
        findings: list[Finding] = []
        for comp, p in s.programs.items():
            for name in p.logs:
                tail = self.read_tail(s.log_path(name))
                lines = list(tail.lines)
                for m in self.rules.match(lines, comp):
                    if any(f.id == m.rule.id and f.source == tail.path for f in findings):
                        continue  # issue 9: k3s also reads the runtime's log; one problem per cause and log
                    findings.append(self.rules.finding(
                        m.rule.id, p.program, evidence=evidence_for(lines, list(m.line_numbers)),
                        source=tail.path, scope=f"logs:{comp}", details={"program": p.program},
                        component=comp if comp in m.rule.components else None,  # issue 9: as for a failure event
                    ))
        self.book, changes = self.book.add(self._with_host_facts(findings), now)  # issue 12:
        return changes

    def _say_region_api(self, api: str, **kv: Any) -> None:
        """One stderr line when the API's state changes (not one per poll)."""
        if api != self._region_api_said:
            self._region_api_said = api
            self.log.info("region_api", api=api, **kv)

    # ------------------------------------------------------------------ host, console, phases (issue 5)

    def _init_boot_checks(
        self, host_sampler: Callable[[], HostSample] | None, console_prober: Callable[[], ProbeResult] | None
    ) -> None:
        s = self.settings
        paths = tuple(dict.fromkeys((*s.host.paths, s.host.data_dir)))
        c = s.console
        self.host_task: BackgroundTask[HostSample] = BackgroundTask(
            "host", host_sampler or (lambda: HostReader().sample(paths)), s.host.poll_seconds, self.clock
        )
        self.console_task: BackgroundTask[ProbeResult] = BackgroundTask(
            "console-probe",
            console_prober or (lambda: probe_console(c.host, c.port, c.path, c.timeout_seconds)),
            c.poll_seconds,
            self.clock,
        )
        self.tasks += [self.host_task, self.console_task]
        self._host_sample: HostSample | None = None
        self._host_started: float | None = None
        self._host_hung_said = False
        self._host_failing = False
        self._host_load_failure: tuple[str, ...] | None = None
        self._probe: ProbeResult | None = None
        self._probed_at: float | None = None
        """When the latest finished probe started."""
        self._probe_ok_at: float | None = None
        """When the latest probe that got an HTTP answer started (``None`` after a failed one)."""
        self._console_tails: list[tuple[str, tuple[str, ...]]] = []
        self._phase_clock: boot.PhaseClock | None = None
        self._timeline_check_pending = False
        self._stuck_checked_at: float | None = None
        self._storms: dict[tuple[str, str], tuple[float, int]] = {}

    def tick_host(self, now: float) -> list[Change]:
        """Free space of the watched paths, the console's HTTP port (both in background tasks)."""
        changes: list[Change] = []
        if self.host_task.maybe_start(now):
            self._host_started = now
        elif self.host_task.busy and self._host_started is not None:
            stuck_for = now - self._host_started
            if stuck_for > self.settings.host.timeout_seconds and not self._host_hung_said:
                self.log.warning("host_check_hung", seconds=int(stuck_for),
                                 note="statvfs of a watched path does not return (a hung network filesystem?)")
                self._host_hung_said = True
        fresh = False
        for outcome in self.host_task.take():
            self._host_hung_said = False
            if outcome.error is not None or outcome.value is None:
                if not self._host_failing:
                    self.log.warning("host_check_failed", error=str(outcome.error))
                self._host_failing = True
                continue
            self._host_failing = False
            self._host_sample = outcome.value
            self.host = HostView(paths=dict(outcome.value.paths))
            fresh = True
        load_failure = self._image_load_failure()
        if self._host_sample is not None and (fresh or load_failure != self._host_load_failure):
            changes += self._apply_host(self._host_sample, load_failure, now)
        changes += self._tick_console(now)
        return changes

    def _image_load_failure(self) -> tuple[str, ...] | None:
        """The evidence of an active ``images.load-failed`` problem, or ``None``."""
        failed = [p for p in self.book.active.values() if p.finding.id == "images.load-failed"]
        return failed[0].finding.evidence if failed else None

    def _apply_host(self, sample: HostSample, load_failure: tuple[str, ...] | None, now: float) -> list[Change]:
        key = ("images.bind-mount-storage", self.settings.host.data_dir)
        before = self.book.active.get(key)
        findings = host_checks.host_findings(self.rules, sample, self.settings.host, load_failure)
        changes = self.apply_findings(host_checks.SCOPE, findings, now)
        after = self.book.active.get(key)
        if before is not None and after is not None and after.finding.severity.rank < before.finding.severity.rank:
            # Same problem, now worse: one line, as the raise had one.
            self.log.error("problem_escalated", id=key[0], subject=key[1], severity=after.finding.severity.value,
                           reason="image loading fails on a host-share data folder")
        self._host_load_failure = load_failure
        return changes

    def _tick_console(self, now: float) -> list[Change]:
        """Probe the console's HTTP port while it is RUNNING; ``console.unreachable`` past the grace."""
        c = self.settings.console
        comp = "console"
        view = self.processes.get(comp)
        running = view is not None and view.state == "RUNNING"
        if not c.probe:
            return []
        if running:
            self.console_task.maybe_start(now)
        fresh = False
        for outcome in self.console_task.take():
            if outcome.error is not None or outcome.value is None:
                result = ProbeResult(False, f"probe failed: {outcome.error}")
            else:
                result = outcome.value
            self._probe, self._probed_at = result, outcome.started
            self._probe_ok_at = outcome.started if result.ok else None
            fresh = True
        known = view is not None and view.state != UNKNOWN
        if not fresh and (running or not known or not self.book.in_scope(boot.CONSOLE_SCOPE)):
            return []
        finding = boot.console_finding(
            self.rules, view, self._probe, self._probed_at, now, c.grace_seconds, self.programs[comp]
        )
        if finding is not None:
            if not self.book.in_scope(boot.CONSOLE_SCOPE) or not self._console_tails:
                logs = self.settings.programs[comp].logs
                self._console_tails = [(t.path, t.lines) for t in (self.read_tail(self.settings.log_path(n)) for n in logs)]
            finding = boot.console_finding(
                self.rules, view, self._probe, self._probed_at, now, c.grace_seconds, self.programs[comp],
                self._console_tails,
            )
        else:
            self._console_tails = []
        return self.apply_findings(boot.CONSOLE_SCOPE, [finding] if finding else [], now)

    def tick_phases(self, now: float) -> list[Change]:
        """Phase deadlines (``phase.stuck``) and restart-storm summaries."""
        self._phase_and_timeline(now)
        self._summarize_storms(now)
        clock = self._phase_clock
        if clock is None:
            return []
        # A phase left behind is no longer stuck, whatever else is known.
        self.book, changes = self.book.resolve_where(
            lambda p: p.finding.scope == boot.PHASE_SCOPE and p.finding.subject != clock.phase, now
        )
        if not self._deadline_judgeable(clock.phase, now):
            return changes  # a stuck problem carried over a restart stays as it is meanwhile
        limit = boot.deadline_of(clock.phase, self.settings)
        finding: Finding | None = None
        if limit is not None and now - clock.began > limit:
            active = self.book.active.get(("phase.stuck", clock.phase))
            if active is not None and self._stuck_checked_at is not None and now - self._stuck_checked_at < STUCK_REFRESH_SECONDS:
                return changes  # still stuck; refreshed (how long, evidence) once a minute
            finding = boot.stuck_finding(self.rules, clock, now, self.settings, self._stuck_evidence(clock.phase))
            self._stuck_checked_at = now
        changes += self.apply_findings(boot.PHASE_SCOPE, [finding] if finding else [], now)
        return changes

    def _deadline_judgeable(self, phase: str, now: float) -> bool:
        """Not in the first seconds after the listener started (the first API poll and HTTP probe
        are on their way), nor for the console before the probe has had a go at its current run."""
        if now - self.started_at < STARTUP_SETTLE_SECONDS:
            return False
        if phase == "console" and self.settings.console.probe:
            view = self.processes.get("console")
            if view is not None and view.state == "RUNNING" and (
                self._probed_at is None or view.since is None or self._probed_at < view.since
            ):
                return False
        return True

    def _stuck_evidence(self, phase: str) -> list[str]:
        tails: list[tuple[str, tuple[str, ...]]] = []
        if phase in self.settings.programs:
            tails = [(t.path, t.lines) for t in
                     (self.read_tail(self.settings.log_path(n)) for n in self.settings.programs[phase].logs)]
        scope_comp = {"images": "images", "region": "region"}.get(phase, phase)
        related = [p for p in self.book.ordered() if p.finding.component in (scope_comp, "node", "host")
                   or p.finding.scope == processes.scope_of(phase)]
        return boot.stuck_evidence(phase, self.processes, self.region, related, list(self.init_lines), tails, self._probe)

    def _phase_and_timeline(self, now: float) -> str:
        """The current phase; the timeline and the phase clock brought up to date."""
        answering = boot.console_answering(self.processes.get("console"), self._probe_ok_at, self.settings.console.probe)
        key = (tuple(self.processes.values()), id(self.region), answering, self._timeline_check_pending)
        if key == self._phase_key and self._phase_cached is not None:
            return self._phase_cached  # nothing the phase depends on has changed since the last event
        phase = phases.current_phase(self.processes, self.region, answering)
        if self._timeline_check_pending and boot.states_known(self.processes):
            self.timeline = boot.forget_unreached(self.timeline, phase)
            self._timeline_check_pending = False
        before = self.timeline  # issue 14: the boot in one line when ready is first reached
        self.timeline = boot.update(self.timeline, phase, now, self.processes, self.region)
        took = boot.boot_took(before, self.timeline, self.started_at, self._phase_clock is None,  # issue 14
                              frozenset(c for c, v in self.processes.items() if v.state == ABSENT))  # issue 14
        if took is not None:  # issue 14
            alerts.ready(took.phases, took.total, took.began_before_watchdog, self.log)  # issue 14
        self._phase_clock = boot.advance(self._phase_clock, phase, self.timeline, now, self.started_at)
        self._phase_key, self._phase_cached = key, phase
        return phase

    def _summarize_storms(self, now: float) -> None:
        """While a program flaps: at most one ``problem_ongoing`` line a minute, with the count."""
        flapping = {p.key: p for p in self.book.active.values() if p.finding.id == "process.flapping"}
        for key in set(self._storms) - set(flapping):
            del self._storms[key]
        for key, p in flapping.items():
            last_at, last_count = self._storms.setdefault(key, (p.first_seen, p.count))
            if now - last_at < STORM_SUMMARY_SECONDS or p.count <= last_count:
                continue
            comp = self.component_of.get(p.finding.subject)
            view = self.processes.get(comp) if comp else None
            self.log.warning(
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
            self._storms[key] = (now, p.count)

    def restore_previous(self, now: float) -> None:
        """At start: carry the previous status file's problems (first_seen, count), resolved list
        and timeline over; the checks then decide what still holds. Without one, start clean."""
        path = self.settings.status_file
        if not os.path.lexists(path):
            self.log.info("previous_status_ignored", path=path, reason="no previous status file",
                          note="starting with no known problems")
            return
        try:
            doc = read_status(path, now, math.inf)
        except StatusUnavailable as e:
            self.log.warning("previous_status_ignored", path=path, reason=str(e), note="starting with no known problems")
            return
        restored = restore(doc, self.component_of)
        self.book = restored.book
        self.timeline = dict(restored.timeline)
        self._timeline_check_pending = True
        self.log.info(
            "previous_status_restored",
            path=path,
            problems=len(restored.book.active),
            resolved=len(restored.book.resolved),
            skipped=restored.skipped,
        )

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
        self.book, changes = self.book.add(self._with_host_facts(findings), now)  # issue 12:
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
        self.relayout(layouts.resolve(self.base_settings.layout, [i.name for i in infos]))  # issue 9
        self.processes = processes.views_from_infos(self.processes, infos, self.programs, now)
        self._diagnose_unexplained_failures(infos, now)

    def relayout(self, layout: str) -> None:
        """issue 9: run with ``layout`` (what supervisord's programs tell, or the configured one); said once."""
        if layout != self.layout:
            self.layout, self.settings = layout, layouts.settings_for(self.base_settings, layout)
            self.programs = {comp: p.program for comp, p in self.settings.programs.items()}
            self.component_of = {prog: comp for comp, prog in self.programs.items() if prog}
            self.processes = layouts.views_for(self.processes, layout)
            self._layout_said = False
        if not self._layout_said:
            self.log.info("layout", layout=layout, configured=self.base_settings.layout,
                          runtime=self.programs["containerd"] or None, k3s_logs=list(self.settings.programs["k3s"].logs))
            self._layout_said = True

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
        phase = self._phase_and_timeline(now)
        return Snapshot(
            generated_at=now,
            version=__version__,
            pid=os.getpid(),
            started_at=self.started_at,
            overall=phases.overall(phase, self.book),
            phase=phase,
            layout=self.layout,  # issue 9
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
        since = None if self._last_write_at is None else now - self._last_write_at
        looked = None if self._last_render_at is None else now - self._last_render_at
        if not (force or changes or since is None or self._write_failing) and looked is not None \
                and looked < MIN_WRITE_INTERVAL:
            # Nothing could be written yet: skip rendering (the costliest step of an event) and
            # keep only the timeline current, so that phases are dated by their event.
            self._phase_and_timeline(now)
            return
        self._last_render_at = now
        doc = self.document(now)
        comparable = {k: v for k, v in doc.items() if k != "generated_at"}
        changed = comparable != self._last_written
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
    choice = choose_len_unit(settings, env, rpc)  # issue 9: framing under supervisord 3 and 4
    channel.len_unit = choice.unit
    log.info("supervisor_len_unit", unit=choice.unit, configured=settings.supervisor_len_unit, reason=choice.reason)
    try:
        now = clock()
        leftovers = remove_stale_temporaries(settings.status_file, now)
        if leftovers:
            log.info("status_temporaries_removed", count=len(leftovers), note="left by a writer killed mid-write")
        mon.restore_previous(now)
        mon.resync(now)
        mon.publish(mon.refresh(now), now, force=True)
    except Exception:
        log.exception("startup_check_failed")
    resync_logged = False
    while True:
        channel.ready()
        try:
            envelope = channel.read()
        except proto.ProtocolError as e:
            log.error("protocol_error", error=str(e), note="answered OK and waiting for the next event")
            channel.ok()
            continue
        if channel.resyncs and not resync_logged and channel.last_short:
            resync_logged = True
            expected, got = channel.last_short
            log.warning("protocol_resync", unit=channel.len_unit, len=expected, received=got,
                        eventname=envelope.eventname if envelope else None,
                        note="payload shorter than its len: answered at once, next header searched; "
                             "later ones are counted in listener_stopped")
        if envelope is None:
            try:
                # Writes are coalesced: the last events may not be in the file yet.
                mon.publish([], clock(), force=True)
            except Exception:
                log.exception("final_status_write_failed")
            log.info("listener_stopped", reason="end of input", resyncs=channel.resyncs)
            return 0
        try:
            mon.handle(envelope)
        except Exception:
            # FAIL would make supervisord resend the same event forever: log and answer OK.
            log.exception("event_handling_failed", eventname=envelope.eventname)
        finally:
            channel.ok()


def choose_len_unit(settings: Settings, env: Mapping[str, str], rpc: SupervisorRpc | None) -> proto.LenUnitChoice:
    """Which unit the header's ``len`` counts in: read the parent (supervisord) only when asked to."""
    if settings.supervisor_len_unit != "auto" or not env.get("SUPERVISOR_ENABLED"):
        return proto.choose_len_unit(settings.supervisor_len_unit, under_supervisord=False)
    parent = parent_process()

    def version() -> str | None:
        try:
            return rpc.supervisor_version() if rpc else None
        except RpcUnavailable:
            return None

    return proto.choose_len_unit("auto", under_supervisord=True, parent_exe=parent.exe, parent_argv=parent.argv,
                                 ask_version=version)


# ---------------------------------------------------------------------- commands (called by cli.py)


def load_rulebook(settings: Settings) -> RuleBook:
    return load_rule_files(rule_paths(settings))


def run_listen(settings: Settings) -> int:
    """``rainbond-watchdog listen``: take stdin/stdout for the protocol and run until end of input."""
    alerts.configure(alert_format=settings.alert_format, colour=settings.alert_color, languages=settings.languages)
    return listen(settings, load_rulebook(settings), EventChannel.take_stdio())


class _QuietLog:
    """``diagnose`` is for a person: warnings and errors on stderr, not the listener's info lines."""

    def __init__(self, log: Any) -> None:
        self._log = log

    def __getattr__(self, name: str) -> Any:
        if name in ("warning", "error", "exception", "critical"):
            return getattr(self._log, name)
        return lambda *a, **kw: None


DIAGNOSE_SLACK_SECONDS = 2.0
"""What ``diagnose`` may take beyond ``kubernetes.timeout_seconds`` (importing the client, the host checks)."""


def run_diagnose(
    settings: Settings,
    *,
    as_json: bool,
    write: bool,
    out: IO[str],
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """``rainbond-watchdog diagnose``: every check once, now; printed like ``status``; exit status as ``status``.

    supervisord is asked over ``$SUPERVISOR_SERVER_URL``, else the configured ``supervisor_url``
    (``docker exec`` does not pass supervisord's environment). The API poll is waited for at
    most ``timeout_seconds`` plus a little, whatever the API does.
    """
    env = os.environ if env is None else env
    alerts.configure(alert_format=settings.alert_format, colour=settings.alert_color, languages=settings.languages)
    log = _QuietLog(alerts.logger())
    rpc = SupervisorRpc.from_environment(env, settings.rpc_timeout_seconds)
    if rpc is None and settings.supervisor_url:
        rpc = SupervisorRpc(settings.supervisor_url, settings.rpc_timeout_seconds,
                            env.get("SUPERVISOR_USERNAME", ""), env.get("SUPERVISOR_PASSWORD", ""))
    mon = Monitor(settings, load_rulebook(settings), clock=clock, rpc=rpc, log=log)
    mon.kube_env = env
    now = clock()
    # What the listener already knows (first_seen, counts, the timeline) is kept, so that
    # `diagnose --write` does not reset the listener's story; the checks below decide what holds.
    mon.restore_previous(now)
    mon.resync(now)
    reached = mon.rpc_reached(now)
    if not reached:
        # issue 9: without supervisord, the layout whose runtime log was written last
        mon.relayout(layouts.guess(settings.layout, modified_times(layouts.runtime_logs(mon.base_settings))))
        # issue 14: nothing at all to judge by (no supervisord, no log, no kubeconfig) is exit 2, not "no problems".
        tails = [mon.read_tail(settings.log_path(n)) for p in mon.settings.programs.values() for n in p.logs]
        verdict = reach.cannot_judge([
            reach.Attempt(f"supervisord at {rpc.url}" if rpc else "supervisord (no $SUPERVISOR_SERVER_URL, "
                          "no supervisor_url)", False, "no answer"),
            reach.logs_attempt(settings.log_dir, tails),
            reach.Attempt(f"the kubeconfig {settings.kubernetes.kubeconfig or '(none configured)'} or $KUBECONFIG",
                          kube.find_kubeconfig(settings.kubernetes.kubeconfig, env) is not None, "not found"),
        ])
        if verdict is not None:
            raise UsageError(verdict)
        log.warning("supervisor_unreachable", url=rpc.url if rpc else None,
                    note="program states unknown; reading the logs and the k3s API directly")
        mon.region_assume_up = True
    mon.on_tick(now)
    waited = settings.kubernetes.timeout_seconds + DIAGNOSE_SLACK_SECONDS
    done = mon.wait_background(waited)
    for task in mon.tasks:
        # One run each: the tick below only collects (a run started now would die with the process).
        task.interval = math.inf
    now = clock()
    mon.on_tick(now)
    if not reached:
        mon.scan_program_logs(now)  # issue 12: after the host sample, which decides ambiguous lines
    if not done:
        mon.region_poll_overdue(now, waited)
    mon.refresh(now)
    doc = mon.document(now)
    if write:
        try:
            write_atomic(settings.status_file, dumps(doc))
        except OSError as e:
            raise UsageError(f"cannot write the status file {settings.status_file}: {e.strerror or e}") from e
    if as_json:
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(render_text(doc, settings.languages))
    return exit_code(doc)


EXIT_UNREACHABLE = 2
"""``diagnose --kubeconfig``: the cluster's API could not be reached at all."""


def poll_cluster(
    client: kube.KubeClient, k: KubeSettings, memory: region_diag.RegionMemory, clock: Callable[[], float] = time.time
) -> RegionPoll:
    """One read-only poll of a cluster: the namespace's pods, the nodes, then events and previous
    logs of the pods that look wrong; every request within ``k.timeout_seconds`` of the first.

    (What ``Monitor._poll_region`` does for the allinone, with the client given.)
    """
    started = clock()
    before = client.requests
    try:
        client.prepare()  # import and kubeconfig: local work, before the deadline starts
        deadline = time.monotonic() + k.timeout_seconds
        pods = client.list_pods(k.namespace, deadline)
        nodes = client.list_nodes(deadline)
    except kube.ApiUnavailable as e:
        return RegionPoll(started, clock(), error=str(e), requests=client.requests - before)
    details: dict[str, PodDetail] = {}
    for name, container in region_diag.needs_detail(pods, memory, clock(), k):
        notes: list[str] = []
        events: tuple[EventObs, ...] = ()
        lines: tuple[str, ...] = ()
        try:
            events = client.pod_events(k.namespace, name, deadline)
        except kube.DetailUnavailable as e:
            notes.append(str(e))
        if container:
            try:
                lines = client.previous_log(k.namespace, name, container, k.log_tail_lines, deadline)
            except kube.DetailUnavailable as e:
                notes.append(str(e))
        details[name] = PodDetail(events, container, lines, tuple(notes))
    return RegionPoll(started, clock(), pods=pods, nodes=nodes, details=details, requests=client.requests - before)


def diagnose_cluster(
    rules: RuleBook, poll: RegionPoll, k: KubeSettings, kubeconfig: str, now: float
) -> tuple[RegionView, ProblemBook]:
    """A cluster poll → the region's view and its problems (node problems per node, each pod's
    node named when there are several)."""
    book = ProblemBook()
    if poll.error:
        finding = rules.finding(
            "region.api-unreachable", "kubernetes-api",
            evidence=[poll.error, f"kubeconfig: {kubeconfig}"],
            source="k8s:api", scope=region_diag.API_SCOPE, details={"reason": poll.error},
        )
        book, _ = book.reconcile(region_diag.API_SCOPE, [finding], now)
        return region_diag.unreachable_view(RegionView(), poll.error.split(":", 1)[0]), book
    result = region_diag.analyse(rules, poll, region_diag.RegionMemory(), now, k, region_since=None)
    findings = [region_diag.on_cluster(f) for f in result.findings]
    book, _ = book.reconcile(region_diag.PODS_SCOPE, findings, now)
    return result.view, book


def run_diagnose_cluster(
    settings: Settings,
    kubeconfig: str,
    *,
    as_json: bool,
    out: IO[str],
    clock: Callable[[], float] = time.time,
) -> int:
    """``diagnose --kubeconfig FILE``: the region checks against any cluster's namespace
    (``kubernetes.namespace``, ``rbd-system``), read-only (GETs only), with the configured
    timeouts. No supervisord, log or host checks: they are about this machine, not the cluster.

    Exit as ``status``; 2 when the API could not be reached at all.
    """
    if not os.path.isfile(kubeconfig):
        raise UsageError(f"no kubeconfig file at {kubeconfig}")
    k = settings.kubernetes
    rules = load_rulebook(settings)
    client = kube.KubeClient(kubeconfig, k.timeout_seconds)
    try:
        poll = poll_cluster(client, k, region_diag.RegionMemory(), clock)
    finally:
        client.close()
    now = clock()
    region, book = diagnose_cluster(rules, poll, k, kubeconfig, now)
    phase = phases.READY if region.ready else "region"
    doc = render(Snapshot(
        generated_at=now, version=__version__, pid=os.getpid(), started_at=now,
        overall=phases.overall(phase, book), phase=phase, processes={}, region=region, host=HostView(),
        timeline={}, problems=tuple(book.ordered()), resolved=(),
    ))
    if as_json:
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(render_text(doc, settings.languages))
    return EXIT_UNREACHABLE if poll.error else exit_code(doc)


def run_explain(
    settings: Settings, files: list[str], *, component: str | None, as_json: bool, out: IO[str], stdin: IO[bytes]
) -> int:
    """``explain``: 0 nothing matched, 1 one or more problems; unreadable input is a UsageError (2).

    Every file is opened before any is read, so a typo fails at once and prints nothing else.
    """
    book = load_rulebook(settings)
    opened: list[tuple[str, IO[bytes]]] = []
    try:
        for name in files:
            opened.append(("stdin", stdin) if name == "-" else (name, open_log(name)))
        results: list[tuple[str, list[Explained]]] = []
        for name, stream in opened:
            results.append((name, explain_stream(book, stream, name, component)))
    except LogUnreadable as e:
        raise UsageError(f"cannot read {e}") from e
    finally:
        for _, stream in opened:
            if stream is not stdin:
                stream.close()
    if as_json:
        out.write(explanation_json([e for _, found in results for e in found]))
    else:
        out.write(explanation_text(results, settings.languages))
    return 1 if any(found for _, found in results) else 0


def run_rules(settings: Settings, check: list[str] | None, out: IO[str]) -> int:
    """``rules``: list the rules in force; with ``check``, validate those files (a ConfigError is exit 2)."""
    if not check:
        out.write(rules_text(load_rulebook(settings), settings.languages))
        return 0
    for path in check:
        rules, entries = load_rule_file(path)
        out.write(f"{path}: valid ({len(rules)} rules, {len(entries)} problems)\n")
    return 0


def run_rules_export(
    settings: Settings, target: str, components: list[str] | None, out_dir: str | None, *, out: IO[str], err: IO[str]
) -> int:
    """``rules --export npd``: NPD system-log-monitor configs (one per log source), their ConfigMap and
    DaemonSet, written into ``out_dir``; a rule RE2 cannot express is left out with a note on ``err``."""
    if target != "npd":
        raise UsageError(f"unknown export target {target!r}: only npd (Node Problem Detector) is known")
    if not out_dir:
        raise UsageError("--export npd needs --out DIR, the folder to write the configs into")
    export = export_npd(load_rulebook(settings), components)
    if not export.configs:
        known = ", ".join(f"{s.name} ({s.component})" for s in NPD_SOURCES)
        raise UsageError(f"no Node Problem Detector source reads the logs of {', '.join(components or [])}; "
                         f"the sources are {known}")
    notes: dict[tuple[str, str], list[str]] = {}
    for s in export.skipped:
        notes.setdefault((s.rule, s.reason), []).append(s.source)
    for (rule_id, reason), sources in notes.items():
        err.write(f"rainbond-watchdog rules: {rule_id} left out of {', '.join(sources)}: {reason}\n")
    try:
        written = write_export(export, out_dir)
    except OSError as e:
        raise UsageError(f"cannot write into {out_dir}: {e.strerror or e}") from e
    for path in written:
        out.write(f"{path}\n")
    return 0
