"""Which region components need which, and one problem where one component takes others down.

Pure. ``conf/region_dependencies.toml`` (loaded with the rule files) says, per component of
``rbd-system``, which pods need it and which log rules, found in a dependent's previous log,
mean "cannot reach it"::

    [[dependency]]
    component = "rbd-etcd"                       # pod name prefix of the component needed
    problems = ["region.etcd-unreachable"]       # rules that name it in a dependent's log
    dependents = ["rbd-api", "rbd-worker"]      # pod name prefixes that need it
    creates = []                                 # pods it makes (the operator): missing ones fold in

``fold`` turns "rbd-api crash-loops: cannot reach etcd" and "rbd-worker crash-loops: cannot
reach etcd" into the one problem of ``rbd-etcd`` (pending, crash-looping, not ready, missing...)
with the dependents named in its evidence, when that component is down; when it is up, the
dependents keep their own problems (the cause is then elsewhere: network, endpoints, credentials).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from watchdog.config import ConfigError
from watchdog.model import Finding, Texts

MAX_EVIDENCE_LINES = 20
MAX_LINE_CHARS = 500
"""The contract's evidence bounds (as in ``rules``, which imports this module)."""
DEPENDENT_LINES = 6
"""At most this many dependents are quoted one line each; the rest are counted."""


@dataclass(frozen=True)
class Dependency:
    component: str
    problems: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()
    file: str = ""


@dataclass(frozen=True)
class Cause:
    """Why one pod crash-loops, read from its previous log by a region rule."""

    pod: str
    rule_id: str
    line: str
    summary: str = ""


_KEYS = {"component", "problems", "dependents", "creates"}


def parse_dependencies(value: Any, file: str) -> list[Dependency]:
    """The ``[[dependency]]`` tables of a rule file; a bad one is a ConfigError naming file and component."""
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        raise ConfigError(f"{file}: dependency: expected an array of tables [[dependency]]")
    out: list[Dependency] = []
    seen: set[str] = set()
    for i, t in enumerate(value):
        name = t.get("component")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{file}: dependency[{i}]: component: expected a pod name prefix such as 'rbd-etcd'")
        where = f"{file}: dependency {name}"
        unknown = sorted(set(t) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: {unknown[0]}: unknown key")
        if name in seen:
            raise ConfigError(f"{where}: component defined twice in this file")
        seen.add(name)
        lists = {}
        for key in ("problems", "dependents", "creates"):
            items = t.get(key, [])
            if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
                raise ConfigError(f"{where}: {key}: expected a list of names")
            lists[key] = tuple(items)
        if lists["problems"] and not lists["dependents"]:
            raise ConfigError(f"{where}: dependents: a component with problems needs the pods that depend on it")
        if name in lists["dependents"]:
            raise ConfigError(f"{where}: dependents: a component cannot depend on itself")
        out.append(Dependency(name, lists["problems"], lists["dependents"], lists["creates"], file))
    return out


def check_problem_ids(deps: Sequence[Dependency], known: set[str]) -> None:
    """Every rule a dependency names must exist (checked once all rule files are loaded)."""
    for d in deps:
        for pid in d.problems:
            if pid not in known:
                raise ConfigError(f"{d.file}: dependency {d.component}: problems: {pid!r} is in no rule file")


def belongs(name: str, prefix: str) -> bool:
    """A pod (``rbd-api-6f6c565856-bq9bp``) or a missing pod's prefix (``rbd-api``) of a component."""
    return name == prefix or name.startswith(prefix + "-")


def fold(findings: Sequence[Finding], causes: Mapping[str, Cause], deps: Sequence[Dependency]) -> list[Finding]:
    """One problem per component that is down, naming the pods it takes down; the rest unchanged.

    ``findings`` are the poll's pod findings (subject: pod name, or the prefix of a missing pod);
    ``causes`` says, per crash-looping pod, which region rule its previous log matched.
    """
    out = list(findings)
    for dep in deps:
        down = next((i for i, f in enumerate(out) if belongs(f.subject, dep.component)), None)
        if down is None:
            continue  # up, or not judged yet: dependents keep their own problems
        taken: list[tuple[Finding, str]] = []
        for f in out:
            cause = causes.get(f.subject)
            if (
                cause is not None
                and cause.rule_id in dep.problems
                and any(belongs(f.subject, d) for d in dep.dependents)
            ):
                taken.append((f, f"{f.subject}: {f.id} because it cannot reach {dep.component}: {cause.line}"))
            elif f.id == "region.pod-missing" and any(belongs(f.subject, c) for c in dep.creates):
                taken.append((f, f"{f.subject}: missing, as {dep.component} creates it"))
        if not taken:
            continue
        taken.sort(key=lambda t: t[0].subject)
        gone = {id(f) for f, _ in taken}
        target = out[down]
        out = [f for f in out if id(f) not in gone]
        out[out.index(target)] = _with_dependents(target, [line for _, line in taken])
    return out


def _with_dependents(target: Finding, lines: list[str]) -> Finding:
    names = [line.split(":", 1)[0] for line in lines]
    head = [f"takes down {len(names)} other pod(s): {', '.join(names)}"]
    head += lines[:DEPENDENT_LINES]
    if len(lines) > DEPENDENT_LINES:
        head.append(f"... and {len(lines) - DEPENDENT_LINES} more")
    head = [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…" for line in head]
    evidence = (*head, *target.evidence)[:MAX_EVIDENCE_LINES]
    listed = ", ".join(names)
    summary = Texts(
        f"{target.summary.zh} 它导致 {listed} 无法启动。",
        f"{target.summary.en} It takes down {listed}.",
    )
    return dataclasses.replace(target, evidence=tuple(evidence), summary=summary)
