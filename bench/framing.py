"""Cost of reading one envelope: bytes vs characters framing, against the text-wrapper reader
the listener used before (``TextIOWrapper.readline`` + ``read(len)``), all in the same run; and
how soon a short payload (a byte-counted ``len`` read as characters) is answered.

    .venv/bin/python -m bench.framing [--events 20000] [--resyncs 10]

The envelopes come from a file read through its descriptor (the channel's real path: poll and
os.read), so the figure is the framing itself, without a writer on the other end.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.framing import DOTS, envelope, init_line, log_payload, state_envelope
from watchdog.sources import supervisor_protocol as proto
from watchdog.sources.supervisor_events import RESYNC_SECONDS, EventChannel

MIXES: dict[str, list[bytes]] = {
    "ascii state events": [b"state"],
    "init lines with ···· (2-byte characters)": [init_line("INFO", f"Containerd is starting, please wait {DOTS}")],
    "Chinese log lines": ["导入镜像失败：磁盘已满 no space left on device\n".encode() * 4],
    "64 KB log chunks": [b"x" * 65000 + "镜像".encode() * 100],
}


def stream(kind: list[bytes], unit: proto.LenUnit, n: int) -> bytes:
    out = []
    for i in range(n):
        data = kind[i % len(kind)]
        if data == b"state":
            out.append(state_envelope("RUNNING", "k3s", i, unit, pid=i))
        else:
            out.append(envelope("PROCESS_LOG_STDOUT", log_payload(data, unit), unit, i))
    return b"".join(out)


def read_text_wrapper(path: Path) -> int:
    """The reader before issue 9: characters through a UTF-8 TextIOWrapper."""
    count = 0
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n")
        while line := text.readline():
            n = proto.payload_length(proto.parse_header(line))
            remaining = n
            while remaining > 0:
                chunk = text.read(remaining)
                if not chunk:
                    break
                remaining -= len(chunk)
            count += 1
    return count


def read_channel(path: Path, unit: proto.LenUnit) -> int:
    count = 0
    with open(path, "rb", buffering=0) as raw:
        channel = EventChannel(raw, io.StringIO(), len_unit=unit)
        while channel.read() is not None:
            count += 1
    assert channel.resyncs == 0
    return count


def best_of(fn: Callable[[], int], rounds: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return min(times), count


def resync_seconds(runs: int) -> tuple[list[float], list[float]]:
    """(short payload answered, well-framed payload answered) seconds over a real pipe."""
    short, framed = [], []
    line = init_line("INFO", f"Containerd is starting, please wait {DOTS}")
    for i in range(runs):
        for target, unit in ((short, "bytes"), (framed, "characters")):
            r, w = os.pipe()
            with os.fdopen(r, "rb", buffering=0) as rin:
                channel = EventChannel(rin, io.StringIO(), len_unit="characters")
                data = envelope("PROCESS_LOG_STDOUT", log_payload(line, unit), unit, i)  # type: ignore[arg-type]
                threading.Thread(target=os.write, args=(w, data)).start()
                t0 = time.perf_counter()
                assert channel.read() is not None
                target.append(time.perf_counter() - t0)
                os.close(w)
    return short, framed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--resyncs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print("| events | text wrapper (before) | bytes framing | characters framing | bytes / before | characters / before |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        chars, raw = Path(d, "chars"), Path(d, "bytes")
        for name, kind in MIXES.items():
            n = args.events if "64 KB" not in name else max(200, args.events // 50)
            chars.write_bytes(stream(kind, "characters", n))
            raw.write_bytes(stream(kind, "bytes", n))
            base, c0 = best_of(lambda: read_text_wrapper(chars), args.rounds)
            by, c1 = best_of(lambda: read_channel(raw, "bytes"), args.rounds)
            ch, c2 = best_of(lambda: read_channel(chars, "characters"), args.rounds)
            assert c0 == c1 == c2 == n, (c0, c1, c2, n)
            us = [t / n * 1e6 for t in (base, by, ch)]
            print(f"| {name} ({n}) | {us[0]:.1f} µs | {us[1]:.1f} µs | {us[2]:.1f} µs | "
                  f"{by / base:.2f}× | {ch / base:.2f}× |")
    short, framed = resync_seconds(args.resyncs)
    print()
    print(f"short payload (byte-counted len read as characters) answered after: median "
          f"{statistics.median(short) * 1e3:.0f} ms, max {max(short) * 1e3:.0f} ms "
          f"(bound {RESYNC_SECONDS * 1e3:.0f} ms; target < 1000 ms); the same payload well framed: median "
          f"{statistics.median(framed) * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
