"""The one place where sources, diagnosis and sinks meet: the listener's event loop.

Per event: read the clock once, turn the event into observations, let the pure diagnosis update
the state, then publish (alerts for what changed, the status file when it changed or the
heartbeat is due). Every event is answered OK, whatever happened while handling it.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import IO, Any, Callable, Mapping

from watchdog import __version__
from watchdog.config import KubeSettings, Settings, rule_paths
from watchdog.diagnosis import layouts, phases, reach
from watchdog.diagnosis import region as region_diag
from watchdog.diagnosis.problems import Change, ProblemBook
from watchdog.diagnosis.rules import RuleBook, load_rule_file, load_rule_files
from watchdog.diagnosis.scanning import Explained
from watchdog.errors import UsageError
from watchdog.explaining import explain_stream
from watchdog.model import (
    Envelope,
    HostSample,
    HostView,
    LogTail,
    ProbeResult,
    ProcessView,
    RegionPoll,
    RegionView,
)
from watchdog.publication import Publisher
from watchdog.scheduling import BackgroundTask
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
    write_atomic,
)
from watchdog.sinks.status_restore import restore
from watchdog.sources import kube
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.logs import LogUnreadable, modified_times, open_log, read_tail
from watchdog.sources.supervisor_events import EventChannel
from watchdog.sources.supervisor_parent import parent_process
from watchdog.sources.supervisor_rpc import RpcUnavailable, SupervisorRpc
from watchdog.watchers.base import Board, Watcher, overrides
from watchdog.watchers.boot import BootWatcher
from watchdog.watchers.console import ConsoleWatcher
from watchdog.watchers.host import HostWatcher
from watchdog.watchers.init_output import InitOutputWatcher
from watchdog.watchers.processes import ProcessesWatcher
from watchdog.watchers.region import RegionWatcher, poll_cluster


class Monitor:
    """The dispatcher: turns each event into calls on the watchers (``watchdog/watchers/``) and
    hands what changed to the publication. The state lives on the board and in the watchers.

    Edges are injected: the clock, the supervisord RPC client (``None`` when there is none),
    the log reader, the status file writer, the host sampler and the console prober.
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
        self.board = b = Board(
            settings, rules, clock=clock, log=log or alerts.logger(),
            read_tail=tail_reader or (lambda p: read_tail(p, settings.tail_bytes, settings.tail_lines)),
        )
        self.processes_watcher = ProcessesWatcher(b, rpc)
        self.init_watcher = InitOutputWatcher(b)
        self.region_watcher = RegionWatcher(b)
        self.host_watcher = HostWatcher(b, host_sampler)
        self.console_watcher = ConsoleWatcher(b, console_prober)
        self.boot = BootWatcher(b)
        self.watchers: tuple[Watcher, ...] = (
            self.processes_watcher, self.init_watcher, self.region_watcher,
            self.host_watcher, self.console_watcher, self.boot,
        )  # the order of a tick: states first, the phase last
        self.publication = Publisher(b, self.boot, writer)
        self._on_state = [w.on_state_change for w in self.watchers if overrides(w, "on_state_change")]
        self._on_log = [w.on_log for w in self.watchers if overrides(w, "on_log")]
        self._on_tick = [w.on_tick for w in self.watchers if overrides(w, "on_tick")]
        self._refresh = [w.refresh for w in self.watchers if overrides(w, "refresh")]

    # ------------------------------------------------------------------ events

    def handle(self, envelope: Envelope) -> None:
        """One event. Events of programs nobody watches, and output nobody reads, touch nothing."""
        name = envelope.headers.get("eventname", "")  # (Envelope.eventname without the property's call)
        b = self.board
        if name.startswith("PROCESS_STATE_"):
            change = proto.watched_state_change(name, envelope.payload, b.component_of)
            if change is None:
                return
            now = b.clock()
            changes = []
            for state_hook in self._on_state:  # loops, not comprehensions: a function call less (3.11)
                changes += state_hook(change, now)
        elif name.startswith("TICK_"):
            now = b.clock()
            if name == "TICK_60":
                self.resync(now)
            changes = []
            for tick_hook in self._on_tick:
                changes += tick_hook(now)
        elif name.startswith("PROCESS_LOG"):
            if proto.process_name(envelope.payload) in b.component_of:
                return  # the watched programs' output is in their logs, read on a failure
            decoded = proto.log_lines(envelope)
            if decoded is None:
                return
            now = b.clock()
            changes = [c for hook in self._on_log for c in hook(decoded[0], decoded[1], now)]
        else:
            return
        for hook in self._refresh:
            changes += hook(now)
        self.publication.publish(changes, now)  # the same as the methods below, a call less per event

    def on_tick(self, now: float) -> list[Change]:
        """TICK_5 / TICK_60: each watcher does what is due (a resync first, when none was done yet)."""
        return [c for hook in self._on_tick for c in hook(now)]

    def refresh(self, now: float) -> list[Change]:
        """Checks that depend on time alone: resolutions, the init scope."""
        return [c for hook in self._refresh for c in hook(now)]

    # ------------------------------------------------------------------ lifecycle

    def resync(self, now: float) -> None:
        """Read every program's real state over XML-RPC (at start and every TICK_60)."""
        self.processes_watcher.resync(now)

    def relayout(self, layout: str) -> None:
        self.processes_watcher.relayout(layout)

    def rpc_reached(self, now: float) -> bool:
        return self.processes_watcher.reached()

    def scan_program_logs(self, now: float) -> list[Change]:
        return self.processes_watcher.scan_program_logs(now)

    def region_poll_overdue(self, now: float, waited: float) -> list[Change]:
        return self.region_watcher.poll_overdue(now, waited)

    def restore_previous(self, now: float) -> None:
        """At start: carry the previous status file's problems (first_seen, count), resolved list
        and timeline over; the checks then decide what still holds. Without one, start clean."""
        b = self.board
        path = b.settings.status_file
        if not os.path.lexists(path):
            b.log.info("previous_status_ignored", path=path, reason="no previous status file",
                       note="starting with no known problems")
            return
        try:
            doc = read_status(path, now, math.inf)
        except StatusUnavailable as e:
            b.log.warning("previous_status_ignored", path=path, reason=str(e), note="starting with no known problems")
            return
        restored = restore(doc, b.component_of)
        b.book = restored.book
        self.boot.restore(restored.timeline)
        b.log.info("previous_status_restored", path=path, problems=len(restored.book.active),
                   resolved=len(restored.book.resolved), skipped=restored.skipped)

    def wait_background(self, timeout: float) -> bool:
        """Wait for every background check in flight (one-shot commands and tests only)."""
        deadline = self.board.clock() + timeout
        return all(t.wait(max(0.0, deadline - self.board.clock())) for t in self.board.tasks)

    # ------------------------------------------------------------------ output

    def snapshot(self, now: float) -> Snapshot:
        return self.publication.snapshot(now)

    def document(self, now: float) -> dict[str, Any]:
        return self.publication.document(now)

    def publish(self, changes: list[Change], now: float, force: bool = False) -> None:
        self.publication.publish(changes, now, force)

    # ------------------------------------------------------------------ the board, read by commands and tests

    @property
    def settings(self) -> Settings:
        return self.board.settings

    @property
    def base_settings(self) -> Settings:
        return self.board.base_settings

    @property
    def rules(self) -> RuleBook:
        return self.board.rules

    @property
    def clock(self) -> Callable[[], float]:
        return self.board.clock

    @property
    def book(self) -> ProblemBook:
        return self.board.book

    @property
    def processes(self) -> dict[str, ProcessView]:
        return self.board.processes

    @property
    def region(self) -> RegionView:
        return self.board.region

    @region.setter
    def region(self, view: RegionView) -> None:
        self.board.region = view

    @property
    def timeline(self) -> dict[str, float | None]:
        return self.boot.timeline

    @timeline.setter
    def timeline(self, timeline: dict[str, float | None]) -> None:
        self.boot.timeline = timeline

    @property
    def tasks(self) -> list[BackgroundTask[Any]]:
        return self.board.tasks

    @property
    def read_tail(self) -> Callable[[str], LogTail]:
        return self.board.read_tail

    @property
    def kube_env(self) -> Mapping[str, str]:
        return self.region_watcher.kube_env

    @kube_env.setter
    def kube_env(self, env: Mapping[str, str]) -> None:
        self.region_watcher.kube_env = env

    @property
    def region_assume_up(self) -> bool:
        return self.region_watcher.assume_up

    @region_assume_up.setter
    def region_assume_up(self, value: bool) -> None:
        self.region_watcher.assume_up = value


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
    channel.ready()
    while True:
        try:
            envelope = channel.read()
        except proto.ProtocolError as e:
            log.error("protocol_error", error=str(e), note="answered OK and waiting for the next event")
            channel.ok_and_ready()
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
            channel.ok_and_ready()


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
