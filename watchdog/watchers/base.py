"""What the watchers share (the ``Board``) and the hooks a watcher may implement (``Watcher``).

Each fact on the board has one writer: the layout and the programs' views are the processes
watcher's, the region's view the region watcher's, the host sample the host watcher's, the
console probe the console watcher's. The problems are everyone's, each watcher in its own scopes.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, ClassVar

from watchdog.config import Settings
from watchdog.diagnosis import host as host_checks
from watchdog.diagnosis import layouts
from watchdog.diagnosis.problems import Change, ProblemBook
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import (
    PROCESS_COMPONENTS,
    Finding,
    HostSample,
    HostView,
    LogTail,
    ProbeResult,
    ProcessStateChange,
    ProcessView,
    RegionView,
)
from watchdog.scheduling import BackgroundTask

INIT_BUFFER_LINES = 200
"""Lines of the init program's output kept (as evidence and for a stuck phase)."""


class Board:
    """The monitor's shared state. Plain attributes: watchers read them freely and write only their own."""

    def __init__(
        self,
        settings: Settings,
        rules: RuleBook,
        *,
        clock: Callable[[], float],
        log: Any,
        read_tail: Callable[[str], LogTail],
    ) -> None:
        self.base_settings = settings
        self.rules = rules
        self.clock = clock
        self.log = log
        self.read_tail = read_tail
        self.started_at = clock()
        # issue 9: the image layout decides the runtime program and k3s's logs (diagnosis/layouts.py)
        self.layout = layouts.resolve(settings.layout, None)
        self.settings = layouts.settings_for(settings, self.layout)
        self.programs: dict[str, str] = {}
        self.component_of: dict[str, str] = {}
        self._index_programs()
        self.processes: dict[str, ProcessView] = layouts.views_for(
            {comp: ProcessView() for comp in PROCESS_COMPONENTS}, self.layout)
        self.book = ProblemBook()
        self.region = RegionView()
        self.host = HostView()
        self.host_sample: HostSample | None = None
        self.probe: ProbeResult | None = None
        self.probed_at: float | None = None
        """When the latest finished console probe started."""
        self.probe_ok_at: float | None = None
        """When the latest probe that got an HTTP answer started (``None`` after a failed one)."""
        self.init_lines: deque[str] = deque(maxlen=INIT_BUFFER_LINES)
        self.pending: list[Change] = []
        """Changes made outside an event's own handling (a resync), published with the next batch."""
        self.tasks: list[BackgroundTask[Any]] = []
        """Slow checks (API polls, HTTP probes, statvfs) running off the event path."""

    def _index_programs(self) -> None:
        self.programs = {comp: p.program for comp, p in self.settings.programs.items()}
        self.component_of = {prog: comp for comp, prog in self.programs.items() if prog}  # embedded: no runtime

    def set_layout(self, layout: str) -> bool:
        """issue 9: run with ``layout`` from now on; whether it changed."""
        if layout == self.layout:
            return False
        self.layout, self.settings = layout, layouts.settings_for(self.base_settings, layout)
        self._index_programs()
        self.processes = layouts.views_for(self.processes, layout)
        return True

    def tails_of(self, component: str) -> list[LogTail]:
        """The ends of a program's logs (the layout decides which logs)."""
        return [self.read_tail(self.settings.log_path(n)) for n in self.settings.programs[component].logs]

    # ---------------------------------------------------------------- problems

    def with_host_facts(self, findings: list[Finding]) -> list[Finding]:  # issue 12:
        """Log findings whose line has several causes (a mount or sysctl denied), decided with the host sample."""
        return host_checks.with_host_facts(self.rules, findings, self.host_sample, self.settings.host)

    def add(self, findings: list[Finding], now: float) -> list[Change]:
        """Raise (or count) findings of a log line or a failure, decided with the host facts."""
        if not findings:
            return []
        self.book, changes = self.book.add(self.with_host_facts(findings), now)
        return changes

    def reconcile(self, scope: str, findings: list[Finding], now: float) -> list[Change]:
        """A check's complete current findings for its scope (raise, count, resolve the rest)."""
        self.book, changes = self.book.reconcile(scope, findings, now)
        return changes

    def resolve_scope(self, scope: str, now: float) -> list[Change]:
        self.book, changes = self.book.resolve_scope(scope, now)
        return changes


class Watcher:
    """One concern. A watcher overrides only the hooks it needs; the dispatcher calls a hook only
    on the watchers that override it (so an event nobody listens to costs nothing).

    Every hook returns the problem changes it made, for the alerts.
    """

    name: ClassVar[str] = ""

    def __init__(self, board: Board) -> None:
        self.board = board

    def on_state_change(self, change: ProcessStateChange, now: float) -> list[Change]:
        """A ``PROCESS_STATE_*`` event of a watched program."""
        return []

    def on_log(self, program: str, lines: list[str], now: float) -> list[Change]:
        """Output (``PROCESS_LOG_*``) of a program that is not a watched component."""
        return []

    def on_tick(self, now: float) -> list[Change]:
        """``TICK_5``/``TICK_60``: do what is due, and only that."""
        return []

    def refresh(self, now: float) -> list[Change]:
        """After every handled event: resolutions that depend on time and state alone."""
        return []


def overrides(watcher: Watcher, hook: str) -> bool:
    """Whether ``watcher`` implements ``hook`` itself (not the base's no-op)."""
    return getattr(type(watcher), hook) is not getattr(Watcher, hook)
