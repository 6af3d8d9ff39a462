"""The floor: a do-nothing eventlistener built on ``supervisor.childutils`` (superlance's way).

It reads each event and answers OK without looking at it; no Python listener can be cheaper.
"""
from __future__ import annotations

import sys

from supervisor import childutils


def main() -> int:
    while True:
        try:
            childutils.listener.wait(sys.stdin, sys.stdout)
        except KeyError:  # end of input: an empty header line has no len
            return 0
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
