"""Streaming the rules over large inputs: the reader's blocks, the literal pre-filter, the scanner."""
from __future__ import annotations

import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.diagnosis.anchors import anchors_of
from watchdog.diagnosis.rules import RuleBook
from watchdog.diagnosis.scanning import Scanner, explain_hits
from watchdog.explaining import explain_stream
from watchdog.sources.logs import LogUnreadable, open_log, read_blocks

NOISE = 'I1130 08:12:44.000000      59 reconciler.go:357] "operationExecutor.VerifyControllerAttachedVolume started" pod="rbd-system/rbd-api-{i}"'
PORT = 'time="2026-11-30T08:12:44Z" level=fatal msg="starting kubernetes: listen tcp :6443: bind: address already in use"'


class Endless(io.RawIOBase):
    """A binary stream of ``total`` bytes of log lines, generated on the fly (nothing kept)."""

    def __init__(self, total: int, special: dict[int, str]) -> None:
        self.left = total
        self.n = 0
        self.special = special
        self.buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if len(self.buf) < len(b) and self.left > 0:
            parts = [self.buf]
            size = len(self.buf)
            while size < len(b) and self.left > 0:
                self.n += 1
                line = (self.special.get(self.n) or NOISE.format(i=self.n)).encode()[: self.left - 1] + b"\n"
                self.left -= len(line)
                size += len(line)
                parts.append(line)
            self.buf = b"".join(parts)
        k = min(len(b), len(self.buf))
        b[:k] = self.buf[:k]
        self.buf = self.buf[k:]
        return k


def blocks(text: bytes, size: int) -> list[bytes]:
    return list(read_blocks(io.BytesIO(text), block_bytes=size))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_blocks_hold_whole_lines_whatever_the_block_size(size: int) -> None:
    text = "alpha\nβeta 中文\n\ngamma\r\ndelta".encode()
    lines = b"\n".join(blocks(text, size)).decode().split("\n")
    assert lines == ["alpha", "βeta 中文", "", "gamma\r", "delta"]


def test_invalid_utf8_is_replaced_not_fatal(rulebook: RuleBook) -> None:
    sc = Scanner(rulebook.rules)
    for block in blocks(b"ok\n\xff\xfe no space left on device\n", 4):
        sc.feed(block)
    [hit] = sc.hits()
    assert hit.rule.id == "host.disk-full"
    assert hit.evidence[-1] == (2, "\ufffd\ufffd no space left on device")


def test_a_runaway_line_is_cut_into_bounded_pieces() -> None:
    out = list(read_blocks(io.BytesIO(b"x" * 100 + b"\nend\n"), block_bytes=8, max_line_bytes=16))
    assert max(len(b) for b in out) <= 16 + 8
    assert b"".join(out).replace(b"\n", b"").startswith(b"x" * 100)


def test_open_log_refuses_missing_and_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LogUnreadable, match="no such file"):
        open_log(str(tmp_path / "missing.log"))
    with pytest.raises(LogUnreadable, match="directory"):
        open_log(str(tmp_path))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"listen tcp[46]? \S*:\d+: bind: address already in use", (": bind: address already in use",)),
        (r"(?i)no space left on device", ("no space left on device",)),
        (r"Can\\?'t connect to (?:local )?MySQL server", ("'t connect to ",)),
        (r"foo|barbaz", ("barbaz", "foo")),
        (r"a.b", None),
        (r"x*", None),
    ],
)
def test_anchor_is_a_literal_every_match_contains(pattern: str, expected: tuple[str, ...] | None) -> None:
    assert anchors_of(re.compile(pattern)) == expected


def test_anchors_agree_with_the_full_rules_on_every_example(rulebook: RuleBook) -> None:
    """The pre-filter never hides a match: each example, scanned alone, gives its rule."""
    for rule in rulebook.rules:
        for example in rule.examples:
            sc = Scanner(rulebook.rules)
            sc.feed_lines([example.upper() if "(?i)" in rule.patterns[0].pattern else example])
            assert rule.id in [h.rule.id for h in sc.hits()], (rule.id, example)


def test_scanner_counts_matches_and_keeps_context_across_blocks(rulebook: RuleBook) -> None:
    sc = Scanner(rulebook.rules)
    sc.feed(b"line 1\nline 2")
    sc.feed(PORT.encode())  # line 3, alone in its block: context on both sides comes from the neighbours
    sc.feed(b"line 4\nline 5\n" + PORT.encode())
    sc.feed(b"line 7")
    hits = {h.rule.id: h for h in sc.hits()}
    port = hits["k3s.port-in-use"]
    assert (port.count, port.first_line, port.last_line) == (2, 3, 6)
    assert [n for n, _ in port.evidence] == [2, 3, 4, 5, 6, 7]
    assert port.evidence[1][1] == PORT
    assert sc.lines_seen == 7


def test_rules_without_anchor_still_run_on_every_line(rulebook: RuleBook) -> None:
    from watchdog.diagnosis.rules import parse_rules

    rules, _ = parse_rules(
        {"rule": [{"id": "k3s.any-digit", "component": "k3s", "severity": "info", "patterns": [r"^\d\d$"],
                   "summary": {"zh": "数", "en": "digits"}, "remediation": {"zh": ["x"], "en": ["x"]},
                   "examples": ["42"]}]},
        "test",
    )
    sc = Scanner(rules)
    sc.feed(b"a\n42\nb\n7")
    assert [(h.rule.id, h.count, h.first_line) for h in sc.hits()] == [("k3s.any-digit", 1, 2)]


def test_evidence_stays_bounded_on_a_large_stream(rulebook: RuleBook) -> None:
    """~20 MB with thousands of matches: at most 20 evidence lines, the latest ones, numbered."""
    special = {n: PORT for n in range(1000, 150_000, 50)}
    found = explain_stream(rulebook, Endless(20 * 1024 * 1024, special), "big.log")  # type: ignore[arg-type]
    port = next(e for e in found if e.finding.id == "k3s.port-in-use")
    assert port.matches > 1000
    assert len(port.finding.evidence) <= 20
    last = max(n for n in special if n <= port.last_line)
    assert port.finding.evidence[-2].startswith(f"{last}: ")


def test_explain_hits_reports_a_multi_component_rule_under_the_chosen_component(rulebook: RuleBook) -> None:
    line = 'level=fatal msg="failed to retrieve agent config: \\"overlayfs\\" snapshotter cannot be enabled for \\"/x\\""'
    sc = Scanner(rulebook.for_component("k3s"))
    sc.feed_lines([line])
    [explained] = explain_hits(rulebook, sc.hits(), "k3s.log", "k3s")
    assert explained.finding.component == "k3s"
    assert explained.finding.evidence == (f"1: {line}",)


def _reference(book: RuleBook, lines: list[str]) -> list[tuple[str, int, int, int, tuple[tuple[int, str], ...]]]:
    """The obvious implementation: every rule on every line, context kept the same way."""
    out = []
    for rule in book.rules:
        hits = [n for n, line in enumerate(lines, 1) if rule.matches(line)]
        if not hits:
            continue
        keep: dict[int, str] = {}
        for n in hits:
            for m in (n - 1, n, n + 1):
                if 1 <= m <= len(lines):
                    keep[m] = lines[m - 1]
        evidence = tuple(sorted(keep.items()))[-20:]
        out.append((rule.id, len(hits), hits[0], hits[-1], evidence))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=60),
    block=st.integers(min_value=1, max_value=400),
)
def test_streamed_scan_equals_the_line_by_line_reference(rulebook: RuleBook, picks: list[int], block: int) -> None:
    """Whatever the block size, the pre-filtered scan finds exactly what every-rule-every-line finds."""
    examples = [e for r in rulebook.rules for e in r.examples]
    noise = [NOISE.format(i=0), "", "level=info msg=ok", CNI_LINE, "中文日志 level=info"]
    pool = examples + noise
    lines = [pool[p % len(pool)] for p in picks]
    sc = Scanner(rulebook.rules)
    for b in read_blocks(io.BytesIO("".join(line + "\n" for line in lines).encode()), block_bytes=block):
        sc.feed(b)
    got = [(h.rule.id, h.count, h.first_line, h.last_line, h.evidence) for h in sc.hits()]
    assert got == _reference(rulebook, lines)
    assert sc.lines_seen == len(lines)


CNI_LINE = ('time="2026-11-30T01:05:13Z" level=error msg="failed to load cni during init, please check CRI plugin status '
            'before setting up network for pods" error="cni config load failed"')
