"""``make bench``: the listener's figures, each as a ratio against a baseline measured in the same run.

    python -m bench [--quick] [--json FILE]

- steady events through ``rainbond-watchdog listen`` against a do-nothing listener built on
  ``supervisor.childutils`` (the floor for a Python listener); target ≤ 1.5×
- a failure event with a 1 MB log against the same with a 1 GB (sparse) log; target: the same
  time, under 5 ms
- peak RSS of the listener (target ≤ 60 MB) and time to its first READY (target ≤ 300 ms)
- reading one envelope under bytes and characters framing against the text-wrapper reader of
  before, and the answer time of a short payload (``bench/framing.py``)
- ``explain`` against ``grep -E`` and the region poll, when their benchmarks are present
  (``bench/explain_vs_grep.py``, ``bench/region_poll.py``); alerts in text against JSON
  (``bench/alerts.py``)
- long streams (issue 11): CPU per event over the first 20 000 and the last of 200 000 events,
  and a mixed stream and unwatched programs' events against the floor (``bench/long_stream.py``)

Listeners are real processes driven over pipes one event at a time, as supervisord does.
These are measurements, not tests: nothing here fails on a missed target, it says so.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.listener import REPO, Listener, floor_argv, frame, listener_env, state_frame, watchdog_argv

MB = 1024 * 1024
K3S_LINES = [
    'time="2026-11-30T08:12:44Z" level=info msg="Starting k3s v1.28.2+k3s1"',
    'time="2026-11-30T08:12:44Z" level=info msg="Database tables and indexes are up to date"',
    'I1130 08:12:45.101 59 server.go:156] "Starting Kubernetes API server" version="v1.28.2+k3s1"',
    'time="2026-11-30T08:12:45Z" level=info msg="Waiting for API server to become available"',
    'W1130 08:12:46.202 59 reflector.go:535] failed to list *v1.Node: connection refused',
]
FAILURE_LINE = 'time="2026-11-30T08:12:47Z" level=fatal msg="starting kubernetes: preparing server: ' \
               'listen tcp 0.0.0.0:6443: bind: address already in use"'


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=str(REPO))
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit.stdout.strip() or "unknown",
    }


# ------------------------------------------------------------------ fixtures


def write_config(root: Path, log_dir: Path) -> Path:
    """A config whose every path is inside ``root`` (no /app here)."""
    (root / "status").mkdir(parents=True, exist_ok=True)
    conf = root / "watchdog.toml"
    conf.write_text(
        f'status_file = "{root}/status/diagnosis.json"\n'
        f'log_dir = "{log_dir}"\n'
        f'\n[host]\npaths = ["{root}"]\n'
        f'\n[kubernetes]\nkubeconfig = "{root}/no-kubeconfig.yaml"\n'
    )
    return conf


def write_log(path: Path, size: int, text_tail: int = MB) -> None:
    """``size`` bytes of log: a sparse hole, then ``text_tail`` bytes of k3s lines ending in a failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    total = 0
    i = 0
    while total < text_tail - len(FAILURE_LINE) - 1:
        line = K3S_LINES[i % len(K3S_LINES)]
        lines.append(line)
        total += len(line) + 1
        i += 1
    lines.append(FAILURE_LINE)
    text = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as fh:
        if size > len(text):
            fh.truncate(size - len(text))
            fh.seek(0, os.SEEK_END)
        fh.write(text)


def steady_events(n: int, start_serial: int = 1) -> Iterator[bytes]:
    """What a healthy allinone sends: init output, programs settling as RUNNING, ticks."""
    for i in range(n):
        serial = start_serial + i
        kind = i % 10
        if kind < 6:
            yield frame("PROCESS_LOG_STDOUT",
                        f"processname:init groupname:init pid:7 channel:stdout\nrainbond init: waiting for region ({i})",
                        serial)
        elif kind < 9:
            prog = ("containerd", "k3s", "console")[i % 3]
            yield state_frame("RUNNING", prog, "STARTING", serial, pid=100 + i % 3)
        else:
            yield frame("TICK_5", f"when:{1_700_000_000 + i * 5}", serial)


# ------------------------------------------------------------------ measurements


def per_event(listener: Listener, events: Iterator[bytes]) -> list[float]:
    return [listener.send(e) for e in events]


def steady(n: int, rounds: int, config: Path) -> dict[str, Any]:
    """Steady events: the floor and the watchdog run at once and take turns event by event.

    Two figures: the median round trip (what supervisord waits per event; on a busy machine it
    is dominated by process wake-ups) and the listener's own CPU time per event (its real cost).
    Taking turns puts both under the same load, so the ratio is fair even when the machine is not quiet.
    """
    env = listener_env()
    wall: dict[str, list[float]] = {"floor": [], "watchdog": []}
    cpu: dict[str, list[float]] = {"floor": [], "watchdog": []}
    rss = {"floor": 0, "watchdog": 0}
    for _ in range(rounds):
        with Listener(floor_argv(), env) as floor, Listener(watchdog_argv(config), env) as dog:
            pair = {"floor": floor, "watchdog": dog}
            for data in steady_events(200):
                floor.send(data)
                dog.send(data)
            c0 = {name: lst.cpu_seconds() for name, lst in pair.items()}
            for data in steady_events(n, 201):
                for name, lst in pair.items():
                    wall[name].append(lst.send(data))
            for name, lst in pair.items():
                cpu[name].append((lst.cpu_seconds() - c0[name]) / n)
                rss[name] = max(rss[name], lst.peak_rss_kib())
    floor_us, dog_us = statistics.median(wall["floor"]) * 1e6, statistics.median(wall["watchdog"]) * 1e6
    floor_cpu, dog_cpu = statistics.median(cpu["floor"]) * 1e6, statistics.median(cpu["watchdog"]) * 1e6
    return {"events": n, "rounds": rounds, "floor_us": floor_us, "watchdog_us": dog_us, "ratio": dog_us / floor_us,
            "floor_cpu_us": floor_cpu, "watchdog_cpu_us": dog_cpu, "cpu_ratio": dog_cpu / max(floor_cpu, 1e-9),
            "floor_rss_kib": rss["floor"], "watchdog_rss_kib": rss["watchdog"]}


STEADY_KINDS: dict[str, Callable[[int], bytes]] = {
    "unknown event (loop only)": lambda i: frame("SOMETHING_ELSE", "x:y", i),
    "PROCESS_LOG line (rules)": lambda i: frame(
        "PROCESS_LOG_STDOUT", f"processname:init groupname:init pid:7 channel:stdout\nrainbond init: waiting ({i})", i),
    "PROCESS_STATE_RUNNING": lambda i: state_frame("RUNNING", ("containerd", "k3s", "console")[i % 3], "STARTING", i,
                                                   pid=100 + i % 3),
    "TICK_5 (checks due)": lambda i: frame("TICK_5", f"when:{1_700_000_000 + i * 5}", i),
}


def steady_by_kind(n: int, config: Path) -> dict[str, Any]:
    """CPU per event by kind, each listener measured alone, one after the other (no turn-taking).

    A second view of the steady figure: with turn-taking the floor's CPU per event comes out
    at ~18 µs, alone at ~40 µs, while the watchdog's is about the same either way; both views
    are printed rather than choosing the kinder one."""
    env = listener_env()
    out: dict[str, Any] = {}
    for kind, make in STEADY_KINDS.items():
        cpu: dict[str, float] = {}
        for name, argv in (("floor", floor_argv()), ("watchdog", watchdog_argv(config))):
            with Listener(argv, env) as lst:
                for i in range(200):
                    lst.send(make(i))
                c0 = lst.cpu_seconds()
                for i in range(200, 200 + n):
                    lst.send(make(i))
                cpu[name] = (lst.cpu_seconds() - c0) / n * 1e6
        out[kind] = {"floor_cpu_us": cpu["floor"], "watchdog_cpu_us": cpu["watchdog"],
                     "ratio": cpu["watchdog"] / max(cpu["floor"], 1e-9)}
    return out


def failure(n: int, root: Path) -> dict[str, Any]:
    """Round trip of a BACKOFF of k3s (tail read, rules run, problem counted), 1 MB vs 1 GB log.

    Both listeners run at once and take turns event by event, so that a busy machine slows
    both alike and the ratio stays honest."""
    env = listener_env()
    sizes = {"1MB": MB, "1GB": 1024 * MB}
    listeners: dict[str, Listener] = {}
    times: dict[str, list[float]] = {label: [] for label in sizes}
    out: dict[str, Any] = {"events": n}
    try:
        for label, size in sizes.items():
            logs = root / f"logs-{label}"
            write_log(logs / "k3s.log", size)
            listeners[label] = Listener(watchdog_argv(write_config(root / f"run-{label}", logs)), env)
        serial = 1
        for i in range(n + 20):
            for label, dog in listeners.items():
                dog.send(state_frame("STARTING", "k3s", "BACKOFF", serial))
                took = dog.send(state_frame("BACKOFF", "k3s", "STARTING", serial + 1, expected=0))
                if i >= 20:  # warm-up excluded
                    times[label].append(took)
            serial += 2
        rss = max(dog.peak_rss_kib() for dog in listeners.values())
    finally:
        for dog in listeners.values():
            dog.close()
    for label in sizes:
        status = json.loads((root / f"run-{label}" / "status" / "diagnosis.json").read_text())
        ts = sorted(times[label])
        out[label] = {
            "log_bytes": (root / f"logs-{label}" / "k3s.log").stat().st_size,
            "median_ms": statistics.median(ts) * 1e3,
            "p95_ms": ts[max(0, int(len(ts) * 0.95) - 1)] * 1e3,
            "diagnosed": sorted({p["id"] for p in status["problems"] if p["subject"] == "k3s"}),
        }
    out["ratio"] = out["1GB"]["median_ms"] / out["1MB"]["median_ms"]
    out["watchdog_rss_kib"] = rss
    return out


def region_rss(root: Path, polls: int) -> dict[str, Any]:
    """Peak RSS once the region is polled (the Kubernetes client loaded), against the HTTPS stand-in."""
    sys.path.insert(0, str(REPO))
    from tests.kube_api import objects
    from tests.kube_api.server import KubeApi

    with KubeApi(objects.scenario("healthy", time.time()), root / "api") as api:
        logs = root / "region-logs"
        logs.mkdir(exist_ok=True)
        config = write_config(root / "region", logs)
        config.write_text(config.read_text().replace(
            f'kubeconfig = "{root / "region"}/no-kubeconfig.yaml"',
            f'kubeconfig = "{api.kubeconfig}"\npoll_seconds = 0.2'))
        status = root / "region" / "status" / "diagnosis.json"
        with Listener(watchdog_argv(config), listener_env()) as dog:
            dog.send(state_frame("RUNNING", "containerd", "STARTING", 1, pid=10))
            dog.send(state_frame("RUNNING", "k3s", "STARTING", 2, pid=11))
            before = dog.peak_rss_kib()
            seen = 0
            serial = 3
            deadline = time.monotonic() + 60
            while seen < polls and time.monotonic() < deadline:
                serial += 1
                dog.send(frame("TICK_5", f"when:{int(time.time())}", serial))
                seen = sum(1 for r in api.requests if "/pods?" in r or r.endswith("/pods"))
                time.sleep(0.05)  # a tick every 50 ms; the poll runs in the listener's background
            after = dog.peak_rss_kib()
            doc = json.loads(status.read_text()) if status.exists() else {}
    return {"polls": seen, "before_kib": before, "after_kib": after,
            "api": doc.get("components", {}).get("region", {}).get("api")}


def startup(runs: int, config: Path) -> dict[str, Any]:
    """Time from spawn to the first READY: the floor (Python + supervisor.childutils) vs the watchdog."""
    env = listener_env()
    floor: list[float] = []
    dog: list[float] = []
    for _ in range(runs):
        with Listener(floor_argv(), env) as f:
            floor.append(f.first_ready)
        with Listener(watchdog_argv(config), env) as d:
            dog.append(d.first_ready)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, watchdog.cli, watchdog.app; "
                               "print(int(any(m == 'kubernetes' or m.startswith('kubernetes.') for m in sys.modules)))"],
        capture_output=True, text=True, cwd=str(REPO), env=env)
    floor_ms, dog_ms = statistics.median(floor) * 1e3, statistics.median(dog) * 1e3
    return {"runs": runs, "floor_ms": floor_ms, "watchdog_ms": dog_ms, "ratio": dog_ms / floor_ms,
            "kubernetes_imported_at_start": probe.stdout.strip() == "1"}


def ere(pattern: str) -> str:
    """A rule's Python regex in POSIX ERE as GNU grep reads it (the rules use a small common subset)."""
    out = pattern.replace("(?:", "(").replace("\\d", "[0-9]").replace("\\S", "[^[:space:]]")
    out = out.replace("\\w", "[[:alnum:]_]").replace("\\x27", "'").replace("\\x22", '"')
    return out.replace("(?i)", "")


def explain_vs_grep(size: int, runs: int, root: Path) -> dict[str, Any]:
    """``rainbond-watchdog explain`` over a large log against ``grep -E`` with the same patterns.

    Both are whole processes (start-up included). The case-insensitive rules are a second
    ``grep -E -i`` pass, so grep gets the two invocations' total."""
    sys.path.insert(0, str(REPO))
    from watchdog.config import load_settings, rule_paths
    from watchdog.diagnosis.rules import load_rule_files

    book = load_rule_files(rule_paths(load_settings()))
    plain: list[str] = []
    folded: list[str] = []
    for rule in book.rules:
        for p in rule.patterns:
            (folded if p.pattern.startswith("(?i)") else plain).append(ere(p.pattern))
    usable = []
    for group in (plain, folded):
        ok = [p for p in group if subprocess.run(["grep", "-E", "-e", p, "/dev/null"], capture_output=True).returncode != 2]
        usable.append(ok)
    (root / "plain.txt").write_text("\n".join(usable[0]) + "\n")
    (root / "folded.txt").write_text("\n".join(usable[1]) + "\n")
    log = root / "explain" / "k3s.log"
    write_log(log, size, size)
    env = listener_env()

    def timed_run(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, cwd=str(REPO), env=env)
        return time.perf_counter() - t0, done

    explain: list[float] = []
    fallback: list[float] = []
    grep: list[float] = []
    found: list[str] = []
    found_fallback: list[str] = []
    for _ in range(runs):
        t, done = timed_run([sys.executable, "-m", "watchdog", "explain", "--json", str(log)])
        explain.append(t)
        found = sorted({p["id"] for p in json.loads(done.stdout or b"{}").get("problems", [])})
        t, done = timed_run([sys.executable, "-m", "bench.explain_engine", "find", str(log)])
        fallback.append(t)
        found_fallback = sorted({p["id"] for p in json.loads(done.stdout or b"{}").get("problems", [])})
        t1, _ = timed_run(["grep", "-E", "-c", "-f", str(root / "plain.txt"), str(log)])
        t2, _ = timed_run(["grep", "-E", "-i", "-c", "-f", str(root / "folded.txt"), str(log)])
        grep.append(t1 + t2)
    e, g, f = statistics.median(explain), statistics.median(grep), statistics.median(fallback)
    from watchdog.diagnosis.literals import available_engines
    return {"log_bytes": log.stat().st_size, "patterns": len(plain) + len(folded),
            "grep_patterns": len(usable[0]) + len(usable[1]), "explain_s": e, "grep_s": g, "ratio": e / g,
            "engine": available_engines()[0], "fallback_s": f, "fallback_ratio": f / g,
            "explain_found": found, "fallback_found": found_fallback}


def optional(module: str, args: list[str], timeout: float = 240) -> dict[str, Any] | None:
    """Run another helper's benchmark module when it is present; its output passes through."""
    if importlib.util.find_spec(module) is None:
        print(f"-- {module}: not present, skipped")
        return None
    print(f"-- {module}")
    sys.stdout.flush()
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=str(REPO), env=listener_env(), timeout=timeout)
    return {"module": module, "exit": done.returncode}


# ------------------------------------------------------------------ report


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def timed(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"-- {name} ...", flush=True)
    t0 = time.perf_counter()
    result = fn()
    result["bench_seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (a smoke run, noisier figures)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    n, rounds, fails, runs = (500, 1, 30, 3) if args.quick else (5000, 3, 200, 9)

    info = machine()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, Linux {info['kernel']}, "
          f"commit {info['commit']}")
    results: dict[str, Any] = {"machine": info}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rainbond-watchdog-bench-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        config = write_config(root / "steady", root / "logs")
        results["steady"] = s = timed("steady events", lambda: steady(n, rounds, config))
        results["steady_by_kind"] = k = timed("steady events by kind, each listener alone",
                                              lambda: steady_by_kind(500 if args.quick else 2000, config))
        results["failure"] = f = timed("failure event, 1 MB vs 1 GB log", lambda: failure(fails, root))
        results["startup"] = u = timed("first READY", lambda: startup(runs, config))
        results["region_rss"] = r = timed("peak RSS with region polls", lambda: region_rss(root, 5 if args.quick else 20))
        if importlib.util.find_spec("bench.explain_vs_grep") is None:
            results["explain"] = timed("explain vs grep -E", lambda: explain_vs_grep(
                (20 if args.quick else 200) * MB, 1 if args.quick else 3, root))
        else:
            results["explain_vs_grep"] = optional("bench.explain_vs_grep", [])
    rss_mib = max(s["watchdog_rss_kib"], f["watchdog_rss_kib"]) / 1024
    floor_rss_mib = s["floor_rss_kib"] / 1024
    results["rss"] = {"watchdog_mib": rss_mib, "floor_mib": floor_rss_mib, "ratio": rss_mib / floor_rss_mib}
    results["region_poll"] = optional("bench.region_poll", ["--rounds", "5"] if args.quick else [])
    results["alerts"] = optional("bench.alerts", ["--quick"] if args.quick else [])  # issue 14: text vs JSON lines
    results["long_stream"] = optional("bench.long_stream", ["--quick"] if args.quick else [], timeout=900)  # issue 11
    results["framing"] = optional("bench.framing", ["--events", "2000", "--resyncs", "3"] if args.quick else [])
    results["bundle"] = optional("bench.bundle", ["--quick"] if args.quick else [], timeout=1800)  # issue 10: the bundle vs the venv

    print()
    print("| figure | baseline | rainbond-watchdog | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| steady event, median round trip ({s['events']} events × {s['rounds']} rounds) | "
          f"{s['floor_us']:.0f} µs (childutils floor) | {s['watchdog_us']:.0f} µs | {s['ratio']:.2f}× | "
          f"≤ 1.5× — {verdict(s['ratio'] <= 1.5)} |")
    if s["floor_cpu_us"] > 0:  # below one clock tick in a --quick run
        print(f"| steady event, listener CPU time per event | {s['floor_cpu_us']:.0f} µs | {s['watchdog_cpu_us']:.0f} µs | "
              f"{s['cpu_ratio']:.2f}× | ≤ 1.5× — {verdict(s['cpu_ratio'] <= 1.5)} |")
    for kind, v in k.items():
        if not isinstance(v, dict):
            continue  # timed() adds the section's own duration
        print(f"| steady, {kind}: CPU per event, each listener alone | {v['floor_cpu_us']:.0f} µs | "
              f"{v['watchdog_cpu_us']:.0f} µs | {v['ratio']:.2f}× | (second view) |")
    worst = max(f["1MB"]["median_ms"], f["1GB"]["median_ms"])
    print(f"| failure event (k3s BACKOFF), median ({f['events']} events) | {f['1MB']['median_ms']:.2f} ms (1 MB log) | "
          f"{f['1GB']['median_ms']:.2f} ms (1 GB log) | {f['ratio']:.2f}× | "
          f"≈ 1× and < 5 ms — {verdict(f['ratio'] < 1.5 and worst < 5)} |")
    print(f"| failure event, p95 | {f['1MB']['p95_ms']:.2f} ms | {f['1GB']['p95_ms']:.2f} ms | "
          f"{f['1GB']['p95_ms'] / f['1MB']['p95_ms']:.2f}× | |")
    print(f"| peak RSS (VmHWM) | {floor_rss_mib:.1f} MiB (floor) | {rss_mib:.1f} MiB | "
          f"{results['rss']['ratio']:.2f}× | ≤ 60 MB — {verdict(rss_mib * 1.048576 <= 60)} |")
    print(f"| peak RSS with {r['polls']} region polls (Kubernetes client loaded) | {r['before_kib'] / 1024:.1f} MiB "
          f"(before the first poll) | {r['after_kib'] / 1024:.1f} MiB | {r['after_kib'] / r['before_kib']:.2f}× | "
          f"≤ 60 MB — {verdict(r['after_kib'] * 1.024 <= 60_000)} |")
    print(f"| first READY, median of {u['runs']} | {u['floor_ms']:.0f} ms (floor) | {u['watchdog_ms']:.0f} ms | "
          f"{u['ratio']:.2f}× | ≤ 300 ms — {verdict(u['watchdog_ms'] <= 300)} |")
    if "explain" in results:
        x = results["explain"]
        print(f"| `explain` over a {x['log_bytes'] / MB:.0f} MB log, whole process, median | "
              f"{x['grep_s'] * 1e3:.0f} ms (`grep -E`, {x['grep_patterns']} of {x['patterns']} patterns) | "
              f"{x['explain_s'] * 1e3:.0f} ms ({x['engine']}) | {x['ratio']:.2f}× | ≤ 2× — {verdict(x['ratio'] <= 2)} |")
        print(f"| `explain`, the same without Hyperscan (`find` fallback) | {x['grep_s'] * 1e3:.0f} ms (`grep -E`) | "
              f"{x['fallback_s'] * 1e3:.0f} ms | {x['fallback_ratio']:.2f}× | (fallback) |")
    print()
    if "explain" in results:
        x = results["explain"]
        print(f"explain found: {', '.join(x['explain_found']) or 'nothing'}; "
              f"with the find fallback: {', '.join(x['fallback_found']) or 'nothing'}")
    print(f"diagnosed in the failure runs: 1 MB {f['1MB']['diagnosed']}, 1 GB {f['1GB']['diagnosed']}")
    print(f"kubernetes client imported at start: {'yes (should be lazy)' if u['kubernetes_imported_at_start'] else 'no'}")
    print(f"total bench time: {time.perf_counter() - t_all:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
