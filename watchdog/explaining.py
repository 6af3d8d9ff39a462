"""``rainbond-watchdog explain``: the log rules over whole files or stdin, streamed and offline.

The streaming reader (sources) feeds the scanner (diagnosis) block by block, so a 1 GB log
costs bounded memory; the app renders the result.
"""
from __future__ import annotations

from typing import IO

from watchdog.diagnosis.rules import RuleBook
from watchdog.diagnosis.scanning import Explained, Scanner, explain_hits
from watchdog.sources.logs import read_blocks


def explain_stream(
    book: RuleBook, stream: IO[bytes], name: str, component: str | None = None, engine: str = "auto"
) -> list[Explained]:
    """The problems the rules find in ``stream`` (rules for ``component`` and the host only, if given).

    ``engine`` picks the literal pre-filter (``auto``: Hyperscan when it runs here, else ``find``);
    the result is the same with either, only the speed differs.

    Raises ``watchdog.sources.logs.LogUnreadable`` when the stream cannot be read.
    """
    scanner = Scanner(book.for_component(component), engine=engine)
    for block in read_blocks(stream, name=name):
        scanner.feed(block)
    return explain_hits(book, scanner.hits(), name, component)
