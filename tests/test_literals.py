"""The literal engines under explain's scanner: Hyperscan and bytes.find propose the same lines,
and the scanner finds what Python's re finds, line by line, over every shipped rule's examples
and the corpus."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from watchdog.config import load_settings, rule_paths
from watchdog.diagnosis.literals import (
    EngineUnavailable,
    FindLiterals,
    HyperscanLiterals,
    available_engines,
    literal_finder,
)
from watchdog.diagnosis.rules import RuleBook, load_rule_files
from watchdog.diagnosis.scanning import RuleHits, Scanner

CORPUS = Path(__file__).resolve().parent / "corpus"
HYPERSCAN = "hyperscan" in available_engines()
needs_hyperscan = pytest.mark.skipif(not HYPERSCAN, reason="hyperscan cannot run here (no wheel or no SSSE3)")

ANCHORS = {b"address already in use": frozenset({0}), b"no space left": frozenset({1, 2}), b"oom": frozenset({3})}
BLOCK = (
    b"first line, nothing\n"
    b"listen tcp :6443: bind: ADDRESS Already In Use\n"
    b"\n"
    b"write /var/lib: no space left on device; oom too\n"
    b"caf\xc3\xa9 no space left and address already in use\n"
    b"oom at the very end without newline"
)


def shipped_book() -> RuleBook:
    return load_rule_files(rule_paths(load_settings()))


def reference_hits(book: RuleBook, lines: list[str]) -> dict[str, tuple[int, int, int]]:
    """What Python's re alone finds: per rule (count, first line, last line), 1-based."""
    out: dict[str, tuple[int, int, int]] = {}
    for rule in book.rules:
        numbers = [n for n, line in enumerate(lines, 1) if rule.matches(line)]
        if numbers:
            out[rule.id] = (len(numbers), numbers[0], numbers[-1])
    return out


def summary(hits: list[RuleHits]) -> dict[str, tuple[int, int, int]]:
    return {h.rule.id: (h.count, h.first_line, h.last_line) for h in hits}


def scan(book: RuleBook, text: bytes, engine: str, block_lines: int = 3) -> list[RuleHits]:
    """Feed ``text`` in small blocks so that matches fall on block edges too."""
    scanner = Scanner(book.rules, engine=engine)
    lines = text.split(b"\n")
    for i in range(0, len(lines), block_lines):
        scanner.feed(b"\n".join(lines[i : i + block_lines]))
    return scanner.hits()


def corpus_texts() -> list[tuple[str, bytes]]:
    """Each corpus case's text (``[[case]] text`` of ``tests/corpus/*.toml``), and any other file whole."""
    if not CORPUS.is_dir():
        return []
    out: list[tuple[str, bytes]] = []
    for p in sorted(CORPUS.rglob("*")):
        if p.suffix == ".toml":
            for case in tomllib.loads(p.read_text(encoding="utf-8")).get("case", []):
                out.append((f"{p.name}: {case['name']}", str(case["text"]).encode("utf-8")))
        elif p.is_file() and p.suffix != ".md":
            out.append((str(p.relative_to(CORPUS)), p.read_bytes()))
    return out


def test_find_engine_proposes_each_line_holding_an_anchor_ascii_case_folded() -> None:
    starts = FindLiterals(ANCHORS).line_starts(BLOCK)
    lines = {BLOCK[s : BLOCK.find(b"\n", s) if BLOCK.find(b"\n", s) != -1 else None]: ids for s, ids in starts.items()}
    assert lines == {
        b"listen tcp :6443: bind: ADDRESS Already In Use": {0},
        b"write /var/lib: no space left on device; oom too": {1, 2, 3},
        b"caf\xc3\xa9 no space left and address already in use": {0, 1, 2},
        b"oom at the very end without newline": {3},
    }


@needs_hyperscan
def test_hyperscan_engine_proposes_the_same_lines_as_find() -> None:
    assert HyperscanLiterals(ANCHORS).line_starts(BLOCK) == FindLiterals(ANCHORS).line_starts(BLOCK)


@needs_hyperscan
def test_hyperscan_engine_agrees_with_find_on_every_shipped_anchor_over_rule_examples() -> None:
    book = shipped_book()
    text = "\n".join(e.upper() if i % 2 else e for i, r in enumerate(book.rules) for e in r.examples)
    block = text.encode("utf-8")
    hs = Scanner(book.rules, engine="hyperscan")
    fb = Scanner(book.rules, engine="find")
    assert hs.engine == "hyperscan" and fb.engine == "find"
    assert hs._finder.line_starts(block) == fb._finder.line_starts(block)


def test_auto_engine_falls_back_to_find_when_hyperscan_cannot_run() -> None:
    assert literal_finder({}, "auto").name == "find"
    assert literal_finder(ANCHORS, "find").name == "find"
    assert literal_finder(ANCHORS, "auto").name == ("hyperscan" if HYPERSCAN else "find")
    with pytest.raises(ValueError, match="engine"):
        literal_finder(ANCHORS, "grep")
    if not HYPERSCAN:
        with pytest.raises(EngineUnavailable):
            literal_finder(ANCHORS, "hyperscan")


@pytest.mark.parametrize("engine", ["find", pytest.param("hyperscan", marks=needs_hyperscan)])
def test_scanner_finds_what_re_finds_over_every_rule_example(engine: str) -> None:
    """Each example between noise lines, every other one upper-cased where its rule ignores case."""
    book = shipped_book()
    lines: list[str] = []
    for rule in book.rules:
        for example in rule.examples:
            lines += ["noise: nothing to see", example, "caf\u00e9 \u00e9t\u00e9 \u4e2d\u6587"]
    text = "\n".join(lines).encode("utf-8")
    expected = reference_hits(book, lines)
    assert len(expected) == len(book.rules)  # every rule matched by its own examples
    for block_lines in (1, 2, 7, 10_000):
        assert summary(scan(book, text, engine, block_lines)) == expected, block_lines


@pytest.mark.parametrize("engine", ["find", pytest.param("hyperscan", marks=needs_hyperscan)])
def test_scanner_finds_what_re_finds_over_the_corpus(engine: str) -> None:
    texts = corpus_texts()
    assert texts, "tests/corpus/ holds no case"
    book = shipped_book()
    for name, raw in texts:
        lines = raw.decode("utf-8", "replace").split("\n")
        assert summary(scan(book, raw, engine, 5)) == reference_hits(book, lines), name


@needs_hyperscan
def test_evidence_and_line_numbers_are_the_same_with_either_engine() -> None:
    book = shipped_book()
    lines = [f"filler {i}" for i in range(50)]
    for i, rule in enumerate(book.rules):
        lines.insert(i * 2 + 1, rule.examples[0])
    text = "\n".join(lines).encode("utf-8")
    assert scan(book, text, "hyperscan", 4) == scan(book, text, "find", 4)


def test_the_listener_does_not_load_hyperscan_at_start() -> None:
    """Only explain's scanner needs it: importing the app leaves it unloaded (RSS, first READY)."""
    import subprocess
    import sys

    probe = "import sys, watchdog.cli, watchdog.app; print('hyperscan' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
