"""Cost of one healthy region poll: requests and wall time for 16 and 1000 pods.

The poll goes through the real `kubernetes` client, over HTTPS, to the API stand-in
(tests/kube_api), exactly as the listener's background thread does it.

    .venv/bin/python -m bench.region_poll [--pods 16 1000] [--rounds 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.kube_api import objects
from tests.kube_api.server import KubeApi
from watchdog.app import Monitor
from watchdog.config import load_settings, rule_paths, settings_from_dict
from watchdog.diagnosis import region
from watchdog.diagnosis.rules import load_rule_files


def measure(pods: int, rounds: int) -> tuple[float, float, float, int]:
    """(median seconds, p90 seconds, analysis seconds, requests per poll) for a healthy region of ``pods`` pods."""
    rules = load_rule_files(rule_paths(load_settings()))
    with tempfile.TemporaryDirectory() as d:
        cluster = objects.healthy(time.time(), extra_pods=max(0, pods - len(objects.SEED_PODS)))
        with KubeApi(cluster, Path(d) / "api") as api:
            settings = settings_from_dict({"status_file": f"{d}/status.json", "log_dir": d,
                                           "kubernetes": {"kubeconfig": str(api.kubeconfig)}})
            mon = Monitor(settings, rules)
            mon.kube_env = {}
            mon.region_watcher.poll()  # warm up: import the client, load the kubeconfig, open the connection
            times, analysis = [], []
            requests = 0
            for _ in range(rounds):
                before = len(api.requests)
                started = time.perf_counter()
                poll = mon.region_watcher.poll()
                times.append(time.perf_counter() - started)
                assert not poll.error, poll.error
                requests = len(api.requests) - before
                started = time.perf_counter()
                region.analyse(rules, poll, mon.region_watcher.memory, time.time(), settings.kubernetes, None)
                analysis.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], statistics.median(analysis), requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[16, 1000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"{'pods':>6} {'requests/poll':>14} {'poll median':>12} {'poll p90':>10} {'analysis':>10}")
    for n in args.pods:
        med, p90, ana, req = measure(n, args.rounds)
        print(f"{n:>6} {req:>14} {med * 1000:>10.1f}ms {p90 * 1000:>8.1f}ms {ana * 1000:>8.2f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
