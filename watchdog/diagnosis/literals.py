"""Finding many literals in a block at once: the pre-filter under ``explain``'s scanner.

Pure (bytes in, positions out). The scanner asks one question of a block: at which line starts
does one of the rules' anchors occur, and for which rules? Two engines answer it the same way:

* ``HyperscanLiterals``: every anchor compiled into one Hyperscan database, matched
  ASCII-case-insensitively in a single pass over the block, however many anchors there are;
* ``FindLiterals``: the block lower-cased once, then ``bytes.find`` per anchor (one pass per
  anchor), the fallback where the ``hyperscan`` wheel is missing or the CPU lacks what it needs.

Both only *propose* lines; the rules' own Python regexes decide. So the engine never changes
what matches, only how fast the candidates are found (``tests/test_literals.py`` checks that both
engines propose the same lines, and that every rule's examples and corpus lines give the same hits).
This is the only module that imports ``hyperscan``.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Protocol, Sequence


def _hyperscan() -> ModuleType | None:
    """The optional accelerator (a manylinux wheel with Hyperscan inside), imported on first use:
    the listener never scans big files and does not pay its 2 MB."""
    try:
        import hyperscan
    except ImportError:  # pragma: no cover - depends on the platform's wheels
        return None
    return hyperscan


class LiteralFinder(Protocol):
    name: str

    def line_starts(self, block: bytes) -> dict[int, set[int]]:
        """``{offset of a line's start: ids of the rules one of whose anchors is on that line}``."""
        ...


class FindLiterals:
    """``bytes.find`` per anchor over the ASCII-lower-cased block."""

    name = "find"

    def __init__(self, anchors: Mapping[bytes, frozenset[int]]) -> None:
        self._anchors = tuple(anchors.items())

    def line_starts(self, block: bytes) -> dict[int, set[int]]:
        low = block.lower()
        starts: dict[int, set[int]] = {}
        for literal, rule_ids in self._anchors:
            pos = low.find(literal)
            while pos != -1:
                start = low.rfind(b"\n", 0, pos) + 1
                starts.setdefault(start, set()).update(rule_ids)
                end = low.find(b"\n", pos)
                if end == -1:
                    break
                pos = low.find(literal, end + 1)
        return starts


class HyperscanLiterals:
    """All anchors in one Hyperscan database, ASCII-case-insensitive, one pass per block."""

    name = "hyperscan"

    def __init__(self, anchors: Mapping[bytes, frozenset[int]]) -> None:
        _hs = _hyperscan()
        if _hs is None:
            raise EngineUnavailable("the hyperscan module is not installed")
        self._literals: tuple[bytes, ...] = tuple(anchors)
        self._rules: tuple[frozenset[int], ...] = tuple(anchors.values())
        self._lengths = tuple(len(a) for a in self._literals)
        try:
            db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            db.compile(
                expressions=list(self._literals),
                ids=list(range(len(self._literals))),
                elements=len(self._literals),
                flags=_hs.HS_FLAG_CASELESS,
                literal=True,
            )
        except Exception as e:  # ArchitectureError (no SSSE3), CompilerError: use the fallback
            raise EngineUnavailable(f"hyperscan cannot compile the anchors: {e}") from e
        self._db: Any = db

    def line_starts(self, block: bytes) -> dict[int, set[int]]:
        starts: dict[int, set[int]] = {}
        lengths, rules, rfind = self._lengths, self._rules, block.rfind

        def on_match(literal: int, _from: int, to: int, _flags: int, _context: object) -> None:
            start = rfind(b"\n", 0, to - lengths[literal]) + 1
            found = starts.get(start)
            if found is None:
                starts[start] = set(rules[literal])
            else:
                found.update(rules[literal])

        self._db.scan(block, match_event_handler=on_match)
        return starts


class EngineUnavailable(Exception):
    """The accelerated engine cannot run here (missing wheel, CPU without SSSE3): use ``find``."""


ENGINES = ("auto", "hyperscan", "find")


def literal_finder(anchors: Mapping[bytes, frozenset[int]], engine: str = "auto") -> LiteralFinder:
    """The fastest engine available (``auto``), or the one asked for.

    ``hyperscan`` raises ``EngineUnavailable`` when it cannot run; ``auto`` falls back to ``find``.
    A set of no anchors always gets ``find`` (nothing to compile).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "find" or not anchors:
        return FindLiterals(anchors)
    try:
        return HyperscanLiterals(anchors)
    except EngineUnavailable:
        if engine == "hyperscan":
            raise
        return FindLiterals(anchors)


def available_engines() -> Sequence[str]:
    """The engines that can run on this machine (``find`` always can)."""
    out = ["find"]
    try:
        HyperscanLiterals({b"probe": frozenset({0})})
        out.insert(0, "hyperscan")
    except EngineUnavailable:
        pass
    return out
