"""A tiny eventlistener that records each envelope exactly as supervisord sent it (no framing of its own).

Usage: python recorder.py OUT.jsonl. supervisord sends nothing more until it has the answer, so
after a header everything that arrives within a short wait is that envelope's payload, whatever
unit ``len`` counts in. One JSON line per envelope: the header line and the payload as hex.
"""
from __future__ import annotations

import json
import os
import select
import sys


def main(out_path: str) -> int:
    fd = sys.stdin.fileno()
    buf = b""
    with open(out_path, "a", encoding="utf-8") as out:
        while True:
            os.write(1, b"READY\n")
            while b"\n" not in buf:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return 0
                buf += chunk
            header, _, buf = buf.partition(b"\n")
            while select.select([fd], [], [], 0.1)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
            out.write(json.dumps({"header": header.decode("ascii", "replace"), "payload": buf.hex()}) + "\n")
            out.flush()
            buf = b""
            os.write(1, b"RESULT 2\nOK")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
