"""Literal anchors of regexes: plain text that every match must contain, for fast pre-filters.

Pure and dependency-free (only the standard library's regex parser). A rule's anchors are found
once, when the rule is loaded; both the listener's matcher and the streaming scanner search for
them with plain substring search before running any regex.
"""
from __future__ import annotations

import importlib
import re
from typing import Any, Sequence

_sre: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

MIN_ANCHOR_CHARS = 3
"""Shorter literals match too often to be worth a pre-filter."""
_REPEATS = tuple(getattr(_c, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_c, n))
_ATOMIC = getattr(_c, "ATOMIC_GROUP", object())


def anchors_of(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lower-case literals of which every match of ``pattern`` contains at least one; ``None``
    when there is no usable set (then the pattern must be run over every line)."""
    try:
        parsed = _sre.parse(pattern.pattern, pattern.flags)
    except Exception:  # the pattern compiled, so this is the parser's private API changing
        return None
    found = _alternatives(parsed)
    if not found or min(len(a) for a in found) < MIN_ANCHOR_CHARS:
        return None
    return tuple(sorted(set(found)))


def _alternatives(seq: Any) -> tuple[str, ...] | None:
    best: tuple[str, ...] | None = None

    def consider(candidate: tuple[str, ...] | None) -> None:
        nonlocal best
        if candidate and all(candidate) and (best is None or _score(candidate) > _score(best)):
            best = candidate

    run: list[str] = []
    for op, av in seq:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider(("".join(run).lower(),))
            run = []
        if op is _c.SUBPATTERN:
            consider(_alternatives(av[-1]))
        elif op is _c.BRANCH:
            branches = [_alternatives(b) for b in av[1]]
            if all(branches):
                consider(tuple(x for b in branches if b for x in b))
        elif op in _REPEATS and av[0] >= 1:
            consider(_alternatives(av[2]))
        elif op is _ATOMIC:
            consider(_alternatives(av))
    if run:
        consider(("".join(run).lower(),))
    return best


def _score(alternatives: tuple[str, ...]) -> float:
    """Longer literals match less often; every alternative costs one more pass over the text."""
    return min(map(len, alternatives)) / len(alternatives)


def merge_subsumed(anchors: dict[str, set[int]]) -> dict[str, set[int]]:
    """Drop an anchor that contains another one: finding the shorter finds its lines too."""
    out: dict[str, set[int]] = {}
    for literal in sorted(anchors, key=len):
        inner = next((o for o in out if o in literal), None)
        out.setdefault(inner or literal, set()).update(anchors[literal])
    return out


def rule_anchors(patterns: Sequence[re.Pattern[str]]) -> tuple[str, ...] | None:
    """Literals of which a line matching any of ``patterns`` contains one; ``None`` when a pattern has none."""
    found: list[str] = []
    for p in patterns:
        a = anchors_of(p)
        if a is None:
            return None
        found.extend(a)
    return tuple(sorted(set(found)))
