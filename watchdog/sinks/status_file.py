"""The status file: rendered deterministically, written atomically, read back safely.

Atomic: a temporary file in the same folder (created exclusively, so a planted symlink cannot
redirect it), fsync, ``os.replace``, fsync of the folder. A reader never sees a partial file.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Mapping

from watchdog.model import PHASES, HostView, Overall, PodView, Problem, ProcessView, RegionView

SCHEMA = 1
FILE_MODE = 0o644


class StatusUnavailable(Exception):
    """No usable status file: missing, unreadable, invalid or stale (``status`` exits 2)."""


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return _rfc3339_second(int(t // 1))


@functools.lru_cache(maxsize=512)
def _rfc3339_second(t: int) -> str:
    # The document is rendered on every event and holds a dozen timestamps that rarely change:
    # strftime was a fifth of an event's cost (``make bench``).
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: Any) -> float | None:
    if not isinstance(s, str):
        return None
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Snapshot:
    """Everything the status file shows, as plain values (built by the app)."""

    generated_at: float
    version: str
    pid: int
    started_at: float
    overall: Overall
    phase: str
    processes: Mapping[str, ProcessView]
    region: RegionView
    host: HostView
    timeline: Mapping[str, float | None]
    problems: tuple[Problem, ...]
    resolved: tuple[Problem, ...]
    layout: str = "containerd"
    """The image layout the listener found (``dockerd``, ``containerd``, ``embedded``)."""


def problem_dict(p: Problem) -> dict[str, Any]:
    d = p.finding.as_dict()
    d.update(first_seen=rfc3339(p.first_seen), last_seen=rfc3339(p.last_seen), count=p.count)
    if p.resolved_at is not None:
        d["resolved_at"] = rfc3339(p.resolved_at)
    if p.finding.scope:
        # An addition to the contract's PROBLEM: which check owns it, so that a restarted
        # listener can carry it over (sinks/status_restore.py).
        d["scope"] = p.finding.scope
    return d


def _pod_dict(p: PodView) -> dict[str, Any]:
    d: dict[str, Any] = {"phase": p.phase, "ready": p.ready, "reason": p.reason, "restarts": p.restarts}
    if p.node:
        d["node"] = p.node  # an addition to the contract, on clusters of several nodes
    return d


def render(s: Snapshot) -> dict[str, Any]:
    components: dict[str, Any] = {}
    for name, v in s.processes.items():
        components[name] = {
            "state": v.state,
            "since": rfc3339(v.since),
            "pid": v.pid,
            "exitstatus": v.exitstatus,
            "restarts": v.restarts,
        }
    components["region"] = {
        "api": s.region.api,
        "pods_total": s.region.pods_total,
        "pods_ready": s.region.pods_ready,
        "pods": {name: _pod_dict(p) for name, p in sorted(s.region.pods.items())},
    }
    components["host"] = {
        "paths": {
            path: {
                "free_bytes": u.free_bytes,
                "free_percent": round(u.free_percent, 2),
                "inodes_free_percent": None if u.inodes_free_percent is None else round(u.inodes_free_percent, 2),
            }
            for path, u in sorted(s.host.paths.items())
        }
    }
    return {
        "schema": SCHEMA,
        "generated_at": rfc3339(s.generated_at),
        "watchdog": {"version": s.version, "pid": s.pid, "started_at": rfc3339(s.started_at)},
        "overall": s.overall.value,
        "phase": s.phase,
        "layout": s.layout,
        "components": components,
        # The contract's keys (phases and ready), then extra milestones (``api``) when known.
        "timeline": {
            **{p: rfc3339(s.timeline.get(p)) for p in (*PHASES, "ready")},
            **{k: rfc3339(t) for k, t in s.timeline.items() if k not in (*PHASES, "ready") and t is not None},
        },
        "problems": [problem_dict(p) for p in s.problems],
        "resolved": [problem_dict(p) for p in s.resolved],
    }


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def write_atomic(path: str, text: str, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never a mix.

    Raises ``OSError`` (full disk, read-only folder ...) with the old file left untouched.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


TEMP_PREFIX, TEMP_SUFFIX = ".diagnosis.", ".tmp"


def remove_stale_temporaries(path: str, now: float, older_than: float = 60.0) -> list[str]:
    """Remove temporary files that a writer killed mid-write left beside ``path``.

    Only files older than ``older_than`` seconds go: a ``diagnose --write`` running at the same
    moment keeps its own. Symlinks are unlinked, never followed. Returns what was removed."""
    folder = os.path.dirname(os.path.abspath(path))
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
            continue
        full = os.path.join(folder, name)
        try:
            if now - os.lstat(full).st_mtime >= older_than:
                os.unlink(full)
                removed.append(full)
        except OSError:
            continue
    return removed


def read_status(path: str, now: float, stale_seconds: float) -> dict[str, Any]:
    """The status document, or ``StatusUnavailable`` saying in one sentence why not."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(16 * 1024 * 1024)
    except FileNotFoundError as e:
        raise StatusUnavailable(f"no status file at {path}: is the watchdog listener running?") from e
    except IsADirectoryError as e:
        raise StatusUnavailable(f"{path} is a directory, not a status file") from e
    except OSError as e:
        raise StatusUnavailable(f"cannot read the status file {path}: {e.strerror}") from e
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StatusUnavailable(f"the status file {path} is not valid JSON") from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise StatusUnavailable(f"the status file {path} does not have schema {SCHEMA}")
    for key in ("overall", "phase", "components", "problems"):
        if key not in doc:
            raise StatusUnavailable(f"the status file {path} has no {key!r} field")
    if doc["overall"] not in {o.value for o in Overall}:
        raise StatusUnavailable(f"the status file {path} has an unknown overall value {doc['overall']!r}")
    generated = parse_rfc3339(doc.get("generated_at"))
    if generated is None:
        raise StatusUnavailable(f"the status file {path} has no valid generated_at")
    age = now - generated
    if age > stale_seconds:
        raise StatusUnavailable(
            f"the status file {path} is stale: written {int(age)} s ago (limit {int(stale_seconds)} s); is the listener running?"
        )
    return doc


def exit_code(doc: Mapping[str, Any]) -> int:
    """0 healthy or starting; 1 degraded or failed."""
    return 0 if doc.get("overall") in (Overall.HEALTHY.value, Overall.STARTING.value) else 1
