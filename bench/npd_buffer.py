"""What the exported NPD rules cost per log line, as ratios against a baseline in the same run.

    python -m bench.npd_buffer [--lines N]

NPD (before its last-line shortcut) matches every rule against its whole buffer joined with
newlines, per pushed line. The export sets ``bufferSize: 1`` (our rules are one-line rules); this
measures that against upstream's default of 10 (best of 3 each), with RE2 (google-re2, the engine Go's regexp
follows; absolute times are not Go's, the ratio is the point), and against our own engine here
(``RuleBook.match`` per line). Needs the [test] extra (google-re2).
"""
from __future__ import annotations

import argparse
import time

import re2

from watchdog.app import load_rulebook
from watchdog.config import load_settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.sinks.npd_export import SOURCES, monitor_config

LINES = [
    'time="2026-11-30T08:12:44Z" level=info msg="Starting k3s v1.28.2+k3s1"',
    'I1130 08:12:45.101 59 server.go:156] "Starting Kubernetes API server" version="v1.28.2+k3s1"',
    'time="2026-11-30T08:12:45Z" level=info msg="Waiting for API server to become available"',
    'W1130 08:12:46.202 59 reflector.go:535] failed to list *v1.Node: connection refused',
    'time="2026-11-30T08:12:47Z" level=fatal msg="starting kubernetes: preparing server: '
    'listen tcp 0.0.0.0:6443: bind: address already in use"',
]


def npd_run(patterns: list[str], lines: list[str], size: int) -> tuple[float, int]:
    compiled = [re2.compile(p + r"\z") for p in patterns]
    ring = [""] * size
    hits = 0
    start = time.perf_counter()
    for line in lines:
        ring = [*ring[1:], line]
        text = "\n".join(ring)
        hits += sum(1 for rx in compiled if rx.search(text) is not None)
    return time.perf_counter() - start, hits


def our_run(book: RuleBook, lines: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = sum(len(book.match([line], "k3s")) for line in lines)
    return time.perf_counter() - start, hits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.npd_buffer")
    parser.add_argument("--lines", type=int, default=20000)
    args = parser.parse_args(argv)
    book = load_rulebook(load_settings(None))
    source = next(s for s in SOURCES if s.name == "k3s")
    doc, _ = monitor_config(book, source)
    patterns = [r["pattern"] for r in doc["rules"]]
    lines = (LINES * (args.lines // len(LINES) + 1))[: args.lines]

    base, ours = min(our_run(book, lines) for _ in range(3))
    npd_run(patterns, lines[:1000], 1)  # warm up (RE2 builds its DFA states lazily)
    one, hits_one = min(npd_run(patterns, lines, 1) for _ in range(3))
    ten, hits_ten = min(npd_run(patterns, lines, 10) for _ in range(3))
    print(f"{len(patterns)} k3s rules, {len(lines)} lines")
    print(f"  our engine here (RuleBook.match per line)  {base * 1e6 / len(lines):8.1f} us/line  1.00x  ({ours} matches)")
    print(f"  NPD bufferSize 1 (the export's)            {one * 1e6 / len(lines):8.1f} us/line  {one / base:5.2f}x  ({hits_one} matches)")
    print(f"  NPD bufferSize 10 (upstream's default)     {ten * 1e6 / len(lines):8.1f} us/line  {ten / base:5.2f}x  ({hits_ten} matches)")
    print(f"  bufferSize 10 / bufferSize 1: {ten / one:.2f}x; same matches: {hits_one == hits_ten == ours}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
