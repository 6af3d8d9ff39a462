"""Values shared by every layer: events, observations, findings, problems.

Everything here is frozen; raw wire dicts (supervisord payloads, Kubernetes JSON, psutil tuples)
stop at the adapters in ``watchdog.sources`` and cross layers only as these types.
Time is a float of seconds since the epoch; the sinks turn it into RFC 3339.
"""
from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, NamedTuple

LANGUAGES = ("zh", "en")
COMPONENTS = ("containerd", "images", "k3s", "console")
PROCESS_COMPONENTS = ("containerd", "k3s", "console")
PHASES = ("containerd", "images", "k3s", "region", "console")
LAYOUTS = ("dockerd", "containerd", "embedded")
"""The v5 allinone image layouts (contract, "Image layouts"): which program is the container runtime."""


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 is the most severe; used to sort problems."""
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Overall(enum.StrEnum):
    HEALTHY = "healthy"
    STARTING = "starting"
    DEGRADED = "degraded"
    FAILED = "failed"


ABSENT = "ABSENT"
"""State of a component whose program supervisord does not have (v5.14+ images: no containerd)."""
UNKNOWN = "UNKNOWN"
"""State before the listener has heard anything about a program."""


@dataclass(frozen=True)
class Texts:
    """One sentence per language."""

    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class Steps:
    """Remediation steps per language; commands in backticks."""

    zh: tuple[str, ...]
    en: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"zh": list(self.zh), "en": list(self.en)}

    def first(self, language: str) -> str:
        steps = self.zh if language == "zh" else self.en
        return steps[0] if steps else ""


class Envelope(NamedTuple):
    """One supervisord event: the header tokens and the payload text (a named tuple: one is
    built for every event, and a tuple is built several times faster than a frozen dataclass)."""

    headers: Mapping[str, str]
    payload: str

    @property
    def eventname(self) -> str:
        return self.headers.get("eventname", "")


class ProcessStateChange(NamedTuple):
    """A ``PROCESS_STATE_*`` event, decoded. A named tuple rather than a frozen dataclass: one is
    built for every state event, and a tuple is built five times faster."""

    name: str
    group: str
    from_state: str
    to_state: str
    pid: int | None = None
    expected: bool | None = None
    tries: int | None = None


@dataclass(frozen=True)
class ProcessInfo:
    """What supervisord's ``getProcessInfo`` says about one program."""

    name: str
    state: str
    pid: int | None = None
    exitstatus: int | None = None
    spawnerr: str = ""
    description: str = ""
    start: float | None = None
    stop: float | None = None


@dataclass(frozen=True)
class LogTail:
    """The end of one log file and honest notes on what could not be read."""

    path: str
    lines: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """Something wrong right now, as the diagnosis sees it (no lifecycle yet).

    ``scope`` groups findings that one check owns, so that the check can resolve what it no
    longer sees (``process:k3s``, ``region``, ``host``); it is not part of the contract.
    """

    id: str
    subject: str
    severity: Severity
    component: str
    summary: Texts
    remediation: Steps
    evidence: tuple[str, ...] = ()
    source: str = ""
    scope: str = ""

    @cached_property
    def key(self) -> tuple[str, str]:
        """``(id, subject)``: kept once computed (a restart storm looks its problem up at every start)."""
        return (self.id, self.subject)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "subject": self.subject,
            "severity": self.severity.value,
            "component": self.component,
            "summary": self.summary.as_dict(),
            "remediation": self.remediation.as_dict(),
            "evidence": list(self.evidence),
            "source": self.source,
        }


@dataclass(frozen=True)
class Problem:
    """A finding with its lifecycle: raised once, counted after, resolved when its cause is gone."""

    finding: Finding
    first_seen: float
    last_seen: float
    count: int = 1
    resolved_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.finding.key

    def seen_again(self, finding: Finding, now: float) -> Problem:
        """The same problem counted once more (built without the frozen ``__init__``: a restart
        storm counts its problem at every start)."""
        again = object.__new__(Problem)
        again.__dict__.update(finding=finding, first_seen=self.first_seen, last_seen=now, count=self.count + 1,
                              resolved_at=self.resolved_at)
        return again


class ProcessView(NamedTuple):
    """One supervisord program as the status file shows it. A named tuple, like the state change
    it is built from: one is built for every state event (``process_view``)."""

    state: str = UNKNOWN
    since: float | None = None
    pid: int | None = None
    exitstatus: int | None = None
    restarts: int = 0
    starts: tuple[float, ...] = ()
    """Recent times the program entered STARTING (for flapping windows)."""
    expected: bool | None = None
    """For ``EXITED``: whether supervisord called the exit expected (from the event); ``None``
    when unknown (a snapshot says only the exit status)."""


PHASE_FACTS: Callable[[ProcessView], tuple[Any, ...]] = operator.itemgetter(0, 6, 3)
"""``(state, expected, exitstatus)`` of a view: what the boot phase reads of a program (not its
pid or dates, which change at every event), read in C."""

_new_tuple = tuple.__new__


def process_view(
    state: str, since: float | None, pid: int | None, exitstatus: int | None, restarts: int,
    starts: tuple[float, ...], expected: bool | None,
) -> ProcessView:
    """``ProcessView(...)`` with every field given, without the named tuple's ``__new__`` (which
    is written in Python)."""
    return _new_tuple(ProcessView, (state, since, pid, exitstatus, restarts, starts, expected))


@dataclass(frozen=True)
class PodView:
    """One pod as the status file shows it (``components.region.pods[NAME]``)."""

    phase: str
    ready: str
    """``n/m`` containers ready, as kubectl prints it."""
    reason: str = ""
    restarts: int = 0
    node: str = ""
    """The node it runs on, given when the cluster has several nodes (empty on the allinone)."""


@dataclass(frozen=True)
class RegionView:
    """``components.region``: the k3s API and the rbd-system pods."""

    api: str = "not-started"
    """``not-started`` (k3s not RUNNING or no kubeconfig), ``ok``, or ``unreachable: <reason>``."""
    pods_total: int = 0
    pods_ready: int = 0
    pods: Mapping[str, PodView] = field(default_factory=dict)
    ready: bool = False
    """The API answers and every expected pod exists and is ready."""


# ----------------------------------------------------------------------------- k3s API observations
# What ``sources/kube.py`` reads from the API, mapped from the wire JSON (which stops there).


@dataclass(frozen=True)
class ContainerObs:
    """One container's status (``status.containerStatuses[]``)."""

    name: str
    ready: bool
    restarts: int
    state: str
    """``running``, ``waiting``, ``terminated`` or ``unknown``."""
    reason: str = ""
    """The current state's reason (``CrashLoopBackOff``, ``ImagePullBackOff``, ``OOMKilled`` ...)."""
    message: str = ""
    exit_code: int | None = None
    """Exit code of the current state when terminated."""
    last_reason: str = ""
    """``lastState.terminated.reason`` (``Error``, ``OOMKilled`` ...)."""
    last_exit_code: int | None = None
    last_finished: float | None = None
    init: bool = False


@dataclass(frozen=True)
class ConditionObs:
    """A pod's or node's condition."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    since: float | None = None
    """``lastTransitionTime``."""


@dataclass(frozen=True)
class PodObs:
    name: str
    phase: str
    created: float
    reason: str = ""
    """``status.reason`` (``Evicted``, ``NodeLost`` ...)."""
    message: str = ""
    node: str = ""
    containers: tuple[ContainerObs, ...] = ()
    init_containers: tuple[ContainerObs, ...] = ()
    conditions: tuple[ConditionObs, ...] = ()
    deleting: bool = False

    def condition(self, ctype: str) -> ConditionObs | None:
        return next((c for c in self.conditions if c.type == ctype), None)


@dataclass(frozen=True)
class NodeObs:
    name: str
    created: float
    conditions: tuple[ConditionObs, ...] = ()

    def condition(self, ctype: str) -> ConditionObs | None:
        return next((c for c in self.conditions if c.type == ctype), None)


@dataclass(frozen=True)
class EventObs:
    """A core/v1 Event about a pod, deduplicated (count, first and last time)."""

    type: str
    reason: str
    message: str
    source: str
    count: int
    first: float | None
    last: float | None


@dataclass(frozen=True)
class PodDetail:
    """What is fetched only for a pod that looks wrong: its events and its previous log."""

    events: tuple[EventObs, ...] = ()
    log_container: str = ""
    log_lines: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """What could not be fetched, and why."""


@dataclass(frozen=True)
class RegionPoll:
    """One poll of the k3s API: the namespace's pods and the nodes, or why the API did not answer."""

    started: float
    finished: float
    error: str = ""
    """Empty when the API answered; else the classified reason (``connection refused: ...``)."""
    pods: tuple[PodObs, ...] = ()
    nodes: tuple[NodeObs, ...] = ()
    details: Mapping[str, PodDetail] = field(default_factory=dict)
    requests: int = 0


@dataclass(frozen=True)
class PathUsage:
    free_bytes: int
    free_percent: float
    inodes_free_percent: float | None = None


@dataclass(frozen=True)
class HostView:
    """``components.host``: the watched paths' free space."""

    paths: Mapping[str, PathUsage] = field(default_factory=dict)


# ----------------------------------------------------------------------------- host and console observations
# What ``sources/host.py`` and ``sources/console_probe.py`` read (psutil tuples and sockets stop there).


@dataclass(frozen=True)
class Capabilities:
    """Capability sets of the listener's process, as bit masks (``/proc/self/status``)."""

    effective: int
    bounding: int | None = None
    last_cap: int | None = None
    """The kernel's highest capability number (``/proc/sys/kernel/cap_last_cap``), when readable."""


@dataclass(frozen=True)
class Mount:
    """One line of the mount table (``/proc/self/mounts``)."""

    mountpoint: str
    fstype: str
    source: str = ""


@dataclass(frozen=True)
class HostSample:
    """One reading of the host: the watched paths, memory, CPUs and the mount table."""

    paths: Mapping[str, PathUsage] = field(default_factory=dict)
    """Watched paths that exist and could be measured."""
    memory_bytes: int | None = None
    cpus: int | None = None
    mounts: tuple[Mount, ...] = ()
    notes: tuple[str, ...] = ()
    """What could not be read, and why (one sentence each)."""
    capabilities: Capabilities | None = None
    """The listener's capability sets (``/proc/self/status``); None when they could not be read."""


@dataclass(frozen=True)
class ProbeResult:
    """One HTTP probe of the console: any HTTP answer counts, as for the image's `curl`."""

    ok: bool
    detail: str
    """``HTTP 200`` or the reason there was no answer (``connection refused`` ...)."""
    status: int | None = None
