"""The image layout: which program plays the container runtime and which logs tell about it.

Pure: the configured layout and the programs supervisord has in; the layout and the settings
the checks run with out. The v5 allinone images come in three layouts (contract, "Image layouts"):

- ``dockerd`` (v5.7–v5.8): the ``docker`` program (dockerd) logs to ``dind.log``;
- ``containerd`` (v5.10–v5.13): the ``containerd`` program logs to ``containerd.log``;
- ``embedded`` (v5.9, v5.14–v5.17): no runtime program; k3s runs its own containerd, which logs
  to ``<data_dir>/k3s/agent/containerd/containerd.log``, so its failures are k3s's.

The ``containerd`` component (and phase) follows the runtime program, whatever it is called.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Mapping

from watchdog.config import ProgramSettings, Settings
from watchdog.model import ABSENT, ProcessView

AUTO = "auto"
DOCKERD = "dockerd"
CONTAINERD = "containerd"
EMBEDDED = "embedded"
FALLBACK = CONTAINERD
"""What ``auto`` assumes until supervisord has said which programs it has (the seed's layout)."""
DOCKER_PROGRAM = "docker"
DOCKER_LOG = "dind.log"
EMBEDDED_LOG = os.path.join("k3s", "agent", "containerd", "containerd.log")
"""k3s's own containerd log, relative to ``[host] data_dir`` (k3s runs with ``--data-dir <data_dir>/k3s``)."""
_DEFAULT_RUNTIME = ProgramSettings("containerd", ("containerd.log",))


def detect(programs: Iterable[str]) -> str:
    """The layout the programs supervisord has tell: ``docker`` → dockerd, ``containerd`` →
    containerd, neither → embedded (``docker`` wins if both exist: dockerd runs its own containerd)."""
    names = set(programs)
    if DOCKER_PROGRAM in names:
        return DOCKERD
    if CONTAINERD in names:
        return CONTAINERD
    return EMBEDDED


def resolve(configured: str, programs: Iterable[str] | None) -> str:
    """The layout in force: the configured one, or for ``auto`` the detected one (``programs``
    ``None``: supervisord has not said, so the fallback)."""
    if configured != AUTO:
        return configured
    return FALLBACK if programs is None else detect(programs)


def runtime_programs(base: Mapping[str, ProgramSettings], layout: str, data_dir: str) -> dict[str, ProgramSettings]:
    """The watched programs for a layout, from the configured ones.

    dockerd: the runtime is the ``docker`` program with ``dind.log``, unless the operator named
    another program than ``containerd`` (then theirs is kept). embedded: the runtime has no program
    (its component is ``ABSENT``). In every layout k3s's logs gain the runtime's log (after its own).
    """
    out = dict(base)
    runtime = base["containerd"]
    runtime_logs = runtime.logs
    if layout == DOCKERD and runtime.program == _DEFAULT_RUNTIME.program:
        runtime_logs = (DOCKER_LOG,) if runtime.logs == _DEFAULT_RUNTIME.logs else runtime.logs
        out["containerd"] = dataclasses.replace(runtime, program=DOCKER_PROGRAM, logs=runtime_logs)
    elif layout == EMBEDDED:
        out["containerd"] = dataclasses.replace(runtime, program="", logs=())
        runtime_logs = (os.path.join(data_dir, EMBEDDED_LOG),)
    # In every layout a k3s failure is diagnosed from k3s's logs and the runtime's (k3s talks to it).
    k3s = base["k3s"]
    extra = tuple(log for log in runtime_logs if log not in k3s.logs)
    if extra:
        out["k3s"] = dataclasses.replace(k3s, logs=(*k3s.logs, *extra))
    return out


def settings_for(base: Settings, layout: str) -> Settings:
    """The settings the checks run with under ``layout`` (only ``programs`` differs from ``base``)."""
    return dataclasses.replace(base, programs=runtime_programs(base.programs, layout, base.host.data_dir))


def views_for(views: Mapping[str, ProcessView], layout: str) -> dict[str, ProcessView]:
    """Process views under ``layout``: in embedded the runtime has no program and is ``ABSENT``
    (known without asking supervisord); a runtime wrongly left ``ABSENT`` by a layout change
    is unknown again until supervisord says."""
    out = dict(views)
    current = out.get("containerd", ProcessView())
    if layout == EMBEDDED and current.state != ABSENT:
        out["containerd"] = ProcessView(ABSENT)
    elif layout != EMBEDDED and current.state == ABSENT:
        out["containerd"] = ProcessView()
    return out


def runtime_logs(base: Settings) -> dict[str, str]:
    """Where each layout's runtime writes its log (to guess the layout when supervisord cannot say)."""
    return {
        DOCKERD: base.log_path(DOCKER_LOG),
        CONTAINERD: base.log_path(_DEFAULT_RUNTIME.logs[0]),
        EMBEDDED: os.path.join(base.host.data_dir, EMBEDDED_LOG),
    }


def guess(configured: str, modified: Mapping[str, float]) -> str:
    """The layout for ``diagnose`` without supervisord: the configured one, or for ``auto`` the
    layout whose runtime log was written last (``modified``: layout → mtime of the logs that
    exist; an upgraded container keeps the old layout's log), else the fallback."""
    if configured != AUTO:
        return configured
    if not modified:
        return FALLBACK
    return max(modified, key=lambda layout: modified[layout])
