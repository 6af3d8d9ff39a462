"""Values shared by every layer: events, observations, findings, problems.

Everything here is frozen; raw wire dicts (supervisord payloads, Kubernetes JSON, psutil tuples)
stop at the adapters in ``watchdog.sources`` and cross layers only as these types.
Time is a float of seconds since the epoch; the sinks turn it into RFC 3339.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Mapping

LANGUAGES = ("zh", "en")
COMPONENTS = ("containerd", "images", "k3s", "console")
PROCESS_COMPONENTS = ("containerd", "k3s", "console")
PHASES = ("containerd", "images", "k3s", "region", "console")


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
FAILURE_STATES = frozenset({"BACKOFF", "FATAL", "EXITED", "UNKNOWN_FAILURE"})


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


@dataclass(frozen=True)
class Envelope:
    """One supervisord event: the header tokens and the payload text."""

    headers: Mapping[str, str]
    payload: str

    @property
    def eventname(self) -> str:
        return self.headers.get("eventname", "")


@dataclass(frozen=True)
class ProcessStateChange:
    """A ``PROCESS_STATE_*`` event, decoded."""

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

    @property
    def key(self) -> tuple[str, str]:
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
        return replace(self, finding=finding, last_seen=now, count=self.count + 1)


@dataclass(frozen=True)
class ProcessView:
    """One supervisord program as the status file shows it."""

    state: str = UNKNOWN
    since: float | None = None
    pid: int | None = None
    exitstatus: int | None = None
    restarts: int = 0
    starts: tuple[float, ...] = field(default=(), repr=False)
    """Recent times the program entered STARTING (for flapping windows)."""


@dataclass(frozen=True)
class PodView:
    """One pod as the status file shows it (``components.region.pods[NAME]``)."""

    phase: str
    ready: str
    """``n/m`` containers ready, as kubectl prints it."""
    reason: str = ""
    restarts: int = 0


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


@dataclass(frozen=True)
class PathUsage:
    free_bytes: int
    free_percent: float
    inodes_free_percent: float | None = None


@dataclass(frozen=True)
class HostView:
    """``components.host``: the watched paths' free space."""

    paths: Mapping[str, PathUsage] = field(default_factory=dict)
