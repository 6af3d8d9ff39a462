"""``explain`` as a whole process with its literal engine chosen: ``python -m bench.explain_engine ENGINE FILE``.

The same work as ``rainbond-watchdog explain --json FILE`` (settings, rules, stream, JSON), only
with ``engine`` forced (``find``: the fallback without Hyperscan), so ``make bench`` can print
what the accelerator buys on the same file in the same run.
"""
from __future__ import annotations

import sys

from watchdog import app  # what the real command imports, so start-up costs the same
from watchdog.config import load_settings
from watchdog.explaining import explain_stream
from watchdog.sinks.explanation import explanation_json


def main(argv: list[str]) -> int:
    engine, path = argv
    settings = load_settings()
    book = app.load_rulebook(settings)
    with open(path, "rb") as fh:
        found = explain_stream(book, fh, path, engine=engine)
    sys.stdout.write(explanation_json(found))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
