"""Running the log rules over a stream of any size, fast: blocks of lines in, rule hits out.

Pure: the caller reads the blocks (``watchdog.sources.logs.read_blocks``) and feeds them in.

Speed comes from a literal pre-filter. Every pattern has, almost always, a piece of plain text
that any match must contain (``bind: address already in use``...). Those anchors are found once,
at start, from the parsed regex; a block is searched for all of them in one pass by Hyperscan
(``watchdog.diagnosis.literals``; without it, ``bytes.find`` per anchor), with no per-line Python
work, and only the few lines holding an anchor are split out and run through the full rules, with
Python's own ``re``. A pattern without a usable anchor is run over every line (correct, just
slower). Memory is bounded: per rule a count, the first and last line numbers, and at most
``max_evidence`` evidence lines.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

from watchdog.diagnosis.anchors import MIN_ANCHOR_CHARS, merge_subsumed
from watchdog.diagnosis.literals import literal_finder
from watchdog.diagnosis.rules import MAX_EVIDENCE_LINES, Rule, RuleBook
from watchdog.model import Finding


@dataclass(frozen=True)
class RuleHits:
    """What one rule found in one input."""

    rule: Rule
    count: int
    first_line: int
    last_line: int
    evidence: tuple[tuple[int, str], ...]
    """(1-based line number, text): the latest matched lines with a line of context each side."""


class _State:
    __slots__ = ("count", "evidence", "first", "last", "last_added")

    def __init__(self, max_evidence: int) -> None:
        self.count = 0
        self.first = 0
        self.last = 0
        self.evidence: deque[tuple[int, str]] = deque(maxlen=max_evidence)
        self.last_added = 0

    def add(self, number: int, text: str) -> None:
        if number > self.last_added:
            self.evidence.append((number, text.rstrip("\r")))
            self.last_added = number


class Scanner:
    """Feed it blocks of whole lines (``b"\\n"``-joined bytes, as ``read_blocks`` yields them),
    then ask ``hits()``. One Scanner per input: line numbers and context run across its blocks.

    The pre-filter folds ASCII case only: a case-insensitive rule will not see
    the rare Unicode letters that fold to ASCII (the Kelvin sign for ``k``); anchors that are not
    ASCII are cut to their longest ASCII piece.
    """

    def __init__(
        self, rules: Sequence[Rule], context: int = 1, max_evidence: int = MAX_EVIDENCE_LINES, engine: str = "auto"
    ) -> None:
        self.rules = tuple(rules)
        self.context = max(0, min(context, 1))
        self._states = [_State(max_evidence) for _ in self.rules]
        anchors: dict[str, set[int]] = {}
        self._always: list[int] = []
        for i, rule in enumerate(self.rules):
            found = _ascii_anchors(rule.anchors)
            if found:
                for literal in found:
                    anchors.setdefault(literal, set()).add(i)
            else:
                self._always.append(i)
        self._finder = literal_finder(
            {lit.encode("ascii"): frozenset(ids) for lit, ids in merge_subsumed(anchors).items()}, engine
        )
        self._lines_seen = 0
        self._previous_line = ""
        self._pending_after: list[int] = []

    @property
    def engine(self) -> str:
        """Which literal engine finds the candidate lines (``hyperscan`` or ``find``)."""
        return self._finder.name

    @property
    def lines_seen(self) -> int:
        return self._lines_seen

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Convenience for small inputs already split into lines."""
        lines = list(lines)
        if lines:
            self.feed("\n".join(lines).encode("utf-8", "surrogateescape"))

    def feed(self, block: bytes) -> None:
        if self._always:
            self._feed_every_line(block)
        else:
            self._feed_candidates(block)
        self._lines_seen += block.count(b"\n") + 1
        self._previous_line = _text(block[block.rfind(b"\n") + 1 :])

    def _flush_pending(self, first_line: str) -> None:
        for i in self._pending_after:
            self._states[i].add(self._lines_seen + 1, first_line)
        self._pending_after = []

    def _feed_every_line(self, block: bytes) -> None:
        """The slow path, for rule sets with a pattern that has no anchor: every rule, every line."""
        lines = _text(block).split("\n")
        if self._pending_after:
            self._flush_pending(lines[0])
        for index, line in enumerate(lines):
            ids = [i for i, rule in enumerate(self.rules) if rule.matches(line)]
            if ids:
                before = lines[index - 1] if index else self._previous_line
                after = lines[index + 1] if index + 1 < len(lines) else None
                self._record(self._lines_seen + index + 1, line, before, after, ids)

    def _feed_candidates(self, block: bytes) -> None:
        """The fast path: the literal engine finds the lines holding an anchor; only those are decoded."""
        if self._pending_after:
            end = block.find(b"\n")
            self._flush_pending(_text(block if end == -1 else block[:end]))
        starts = self._finder.line_starts(block)
        index = 0
        counted_to = 0
        for start in sorted(starts):
            index += block.count(b"\n", counted_to, start)
            counted_to = start
            end = block.find(b"\n", start)
            line = _text(block[start:] if end == -1 else block[start:end])
            ids = [i for i in sorted(starts[start]) if self.rules[i].matches(line)]
            if not ids:
                continue
            before = _text(block[block.rfind(b"\n", 0, start - 1) + 1 : start - 1]) if start else self._previous_line
            after = None
            if end != -1:
                after_end = block.find(b"\n", end + 1)
                after = _text(block[end + 1 :] if after_end == -1 else block[end + 1 : after_end])
            self._record(self._lines_seen + index + 1, line, before, after, ids)

    def _record(self, number: int, line: str, before: str, after: str | None, ids: list[int]) -> None:
        """``after`` None: the line ends the block, its successor is the next block's first line."""
        for i in ids:
            state = self._states[i]
            state.count += 1
            state.first = state.first or number
            state.last = number
            if self.context and number > 1:
                state.add(number - 1, before)
            state.add(number, line)
            if self.context:
                if after is None:
                    self._pending_after.append(i)
                else:
                    state.add(number + 1, after)

    def hits(self) -> list[RuleHits]:
        """Every rule that matched at least once, in rule order."""
        return [
            RuleHits(rule, s.count, s.first, s.last, tuple(s.evidence))
            for rule, s in zip(self.rules, self._states, strict=True)
            if s.count
        ]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _ascii_anchors(anchors: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Anchors usable on ASCII-lowered bytes: non-ASCII literals cut to their longest ASCII piece."""
    if anchors is None:
        return None
    out = []
    for a in anchors:
        if not a.isascii():
            a = max(re.split(r"[^\x00-\x7f]+", a), key=len)
            if len(a) < MIN_ANCHOR_CHARS:
                return None
        out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class Explained:
    """One problem that ``explain`` found in one input, with how often and where."""

    finding: Finding
    matches: int
    first_line: int
    last_line: int


def explain_hits(book: RuleBook, hits: Sequence[RuleHits], subject: str, component: str | None = None) -> list[Explained]:
    """Findings for the rules that matched one input (``subject``), most severe first.

    Evidence lines carry their line number (``12: ...``); they are redacted and bounded.
    A rule listing several components is reported under ``component`` when that is one of them.
    """
    out = []
    for h in hits:
        comp = component if component and component in h.rule.components else h.rule.component
        finding = book.finding(
            h.rule.id,
            subject,
            evidence=[f"{n}: {text}" for n, text in h.evidence],
            source=subject,
            scope="explain",
            component=comp,
            details={"program": subject, "state": "-"},
        )
        out.append(Explained(finding, h.count, h.first_line, h.last_line))
    return sorted(out, key=lambda e: (e.finding.severity.rank, e.first_line))
