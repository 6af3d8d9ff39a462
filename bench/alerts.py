"""Cost of what `docker logs` gets: a raised problem in text (four lines for a person) against
the same event as one JSON line, and a quiet bookkeeping event against the same in JSON.

    .venv/bin/python -m bench.alerts [--quick]

Both formats go through structlog into an in-memory stream, in the same run; figures are
medians of several rounds, printed as ratios against the JSON baseline.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Callable

from watchdog.diagnosis.problems import Change
from watchdog.model import Finding, Problem, Severity, Steps, Texts
from watchdog.sinks import alerts


def raised() -> Change:
    f = Finding(
        "k3s.cgroupv2-unsupported", "k3s", Severity.ERROR, "k3s",
        Texts("K3s 无法进入 cgroup v2：此版本的 rainbond-allinone 不支持 cgroup v2。",
              "K3s cannot enter cgroup v2: this rainbond-allinone version does not support cgroup v2."),
        Steps(("使用最新版本的 Rainbond 单机体验版镜像（支持 cgroup v2）。",), ("Use the newest rainbond-allinone image.",)),
        source="/app/logs/k3s.log",
    )
    return Change("raised", Problem(f, 0.0, 0.0))


def per_call(fmt: str, call: Callable[[], None], n: int, rounds: int) -> float:
    """Median seconds per call with alerts configured in ``fmt``."""
    samples = []
    for _ in range(rounds):
        alerts.configure(io.StringIO(), alert_format=fmt, colour="never")
        started = time.perf_counter()
        for _ in range(n):
            call()
        samples.append((time.perf_counter() - started) / n)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, rounds = (500, 3) if args.quick else (5000, 7)
    change = [raised()]
    log = alerts.logger()

    def problem() -> None:
        alerts.emit(change, ("zh", "en"))

    def bookkeeping() -> None:
        log.info("region_api", api="ok", requests=2, seconds=0.004)

    rows = []
    for name, call in (("raised problem", problem), ("bookkeeping event", bookkeeping)):
        json_s = per_call("json", call, n, rounds)
        text_s = per_call("text", call, n, rounds)
        rows.append((name, json_s, text_s))
    alerts.configure()
    print("| alert | json (baseline) | text | ratio |")
    print("| --- | --- | --- | --- |")
    for name, json_s, text_s in rows:
        print(f"| {name} | {json_s * 1e6:.1f} µs | {text_s * 1e6:.1f} µs | {text_s / json_s:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
