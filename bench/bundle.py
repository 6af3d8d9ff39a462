"""``make bench``, the bundle: the one file and the onedir build side by side with the venv install.

    python -m bench.bundle [--quick] [--json FILE]

Figures: size; time to the first READY; wall and CPU time of one ``check`` (the HEALTHCHECK runs
it every 30 s: 120 times an hour); peak RSS of ``listen`` (summed over its processes: the one
file runs as three, staticx's loader, PyInstaller's and Python); what ``listen`` puts under /tmp
while it runs and what is left after it exits. Goals: ``check`` ≤ 0.3 s of CPU, first READY ≤ 1 s.
The bundles run in an empty root (chroot; needs root), the venv install from this checkout.
The bundle is built first when the build cache does not hold the current sources (minutes).
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.listener import REPO, Listener, frame, state_frame
from tests.bundle.building import Bundle, build_bundle
from tests.bundle.emptyroot import clean_env, empty_root, entries, is_root

MB = 1024 * 1024
CHECKS_PER_HOUR = 3600 // 30


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def venv_install_size() -> int:
    """Bytes of the installed distributions the watchdog needs at run time (interpreter not counted)."""
    seen: set[str] = set()
    todo = ["rainbond-watchdog"]
    total = 0
    while todo:
        name = re.split(r"[\s;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        for f in dist.files or []:
            p = Path(str(dist.locate_file(f)))
            if p.is_file() and "__pycache__" not in p.parts:
                total += p.stat().st_size
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return total


class Variant:
    """How to run one build: argv prefix, environment, and the /tmp it uses."""

    def __init__(self, name: str, argv: Callable[..., list[str]], env: dict[str, str], tmp: Path, status: Path,
                 size: int) -> None:
        self.name, self.argv, self.env, self.tmp, self.status, self.size = name, argv, env, tmp, status, size


def pids_of_tree(pid: int) -> list[int]:
    """pid and every descendant (from /proc/*/stat parents)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def du(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)


def first_ready(v: Variant, serial: int) -> float:
    with Listener(v.argv("listen"), v.env) as lst:
        lst.send(state_frame("RUNNING", "containerd", "STARTING", 1, pid=10 + serial))
        return lst.first_ready


def check(v: Variant) -> tuple[float, float]:
    """(wall, CPU) of one ``check``; CPU of every process it ran (they are all waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(v.argv("check"), env=v.env, capture_output=True, timeout=60)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{v.name} check: exit {done.returncode}: {done.stderr.decode(errors='replace')}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def timings(vs: list[Variant], runs: int) -> dict[str, dict[str, float]]:
    """First READY and ``check``, the variants taking turns run by run (a busy machine slows all alike)."""
    ready: dict[str, list[float]] = {v.name: [] for v in vs}
    wall: dict[str, list[float]] = {v.name: [] for v in vs}
    cpu: dict[str, list[float]] = {v.name: [] for v in vs}
    for i in range(runs):
        for v in vs:
            ready[v.name].append(first_ready(v, i))
            w, c = check(v)
            wall[v.name].append(w)
            cpu[v.name].append(c)
    return {v.name: {"first_ready_s": statistics.median(ready[v.name]), "wall_s": statistics.median(wall[v.name]),
                     "cpu_s": statistics.median(cpu[v.name])} for v in vs}


def listen(v: Variant, events: int) -> dict[str, int]:
    """Peak RSS of the listener's processes and its /tmp, while it runs and after it exits."""
    before = du(v.tmp)
    with Listener(v.argv("listen"), v.env) as lst:
        for i in range(events):
            lst.send(frame("PROCESS_LOG_STDOUT", f"processname:init_rainbond groupname:init_rainbond pid:7 "
                           f"channel:stdout\nINFO: 正在加载镜像 ···· ({i})", i + 1))
        pids = pids_of_tree(lst.proc.pid)
        rss = [hwm_kib(p) for p in pids]
        running = du(v.tmp) - before
    time.sleep(0.2)
    return {"processes": len(pids), "rss_sum_kib": sum(rss), "rss_max_kib": max(rss), "tmp_running": running,
            "tmp_left": du(v.tmp) - before}


@contextmanager
def variants(bundle: Bundle, base: Path) -> Iterator[list[Variant]]:
    venv_tmp = base / "venv-tmp"
    venv_tmp.mkdir()
    conf = base / "venv.toml"
    (base / "venv-status").mkdir()
    (base / "venv-logs").mkdir()
    conf.write_text(f'status_file = "{base}/venv-status/diagnosis.json"\nlog_dir = "{base}/venv-logs"\n'
                    f'[host]\npaths = ["{base}"]\n')
    env = {**clean_env(TMPDIR=str(venv_tmp), RAINBOND_WATCHDOG_CONFIG=str(conf)), "PYTHONPATH": str(REPO)}
    out = [Variant("venv install", lambda *a: [sys.executable, "-m", "watchdog", *a], env, venv_tmp,
                   base / "venv-status" / "diagnosis.json", venv_install_size())]
    if not is_root():
        print("-- bench.bundle: not root, so no chroot: the one file runs on this machine, the onedir is skipped")
        one_tmp = base / "onefile-tmp"
        one_tmp.mkdir()
        out.append(Variant("one file", lambda *a: [str(bundle.onefile), *a], {**env, "TMPDIR": str(one_tmp)},
                           one_tmp, out[0].status, tree_size(bundle.onefile)))
        yield out
        return
    with empty_root(base, bundle, "onefile") as one, empty_root(base, bundle, "onedir") as folder:
        out.append(Variant("one file (onefile + staticx)", one.argv, clean_env(), one.inside("/tmp"),
                           one.inside("/app/status/diagnosis.json"), tree_size(bundle.onefile)))
        out.append(Variant("folder (onedir + its C library)", folder.argv, clean_env(), folder.inside("/tmp"),
                           folder.inside("/app/status/diagnosis.json"), tree_size(bundle.onedir)))
        yield out
        for root in (one, folder):
            left = [e for e in entries(root.path) if e.startswith("tmp/")]
            if left:
                print(f"-- left in {root.path.name}/tmp: {left[:5]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    runs, events = (3, 50) if args.quick else (9, 300)
    print("-- bench.bundle: building the bundle (cached by source hash) ...", flush=True)
    t0 = time.perf_counter()
    bundle = build_bundle()
    print(f"-- bundle ready in {time.perf_counter() - t0:.0f} s", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rainbond-watchdog-bench-bundle-") as tmp, \
            variants(bundle, Path(tmp)) as vs:
        print(f"-- first READY and check, {runs} rounds, taking turns ...", flush=True)
        times = timings(vs, runs)
        for v in vs:
            print(f"-- {v.name}: listen ...", flush=True)
            r: dict[str, Any] = {"size_bytes": v.size, **times[v.name]}
            r.update(listen(v, events))
            results[v.name] = r
    base = results["venv install"]
    print()
    print("| figure | venv install (baseline) | " + " | ".join(n for n in results if n != "venv install") + " | goal |")
    print("| --- | --- | " + " | ".join("---" for n in results if n != "venv install") + " | --- |")

    def row(label: str, key: str, fmt: Callable[[float], str], goal: str = "", limit: float | None = None) -> None:
        cells = []
        for name, r in results.items():
            if name == "venv install":
                continue
            ok = "" if limit is None else (" ✓" if r[key] <= limit else " ✗")
            ratio = f" ({r[key] / base[key]:.1f}×)" if base[key] else ""
            cells.append(f"{fmt(r[key])}{ratio}{ok}")
        print(f"| {label} | {fmt(base[key])} | " + " | ".join(cells) + f" | {goal} |")

    row("size (venv: the runtime distributions, no interpreter)", "size_bytes", lambda x: f"{x / MB:.1f} MB")
    row(f"first READY, median of {runs}", "first_ready_s", lambda x: f"{x * 1e3:.0f} ms", "≤ 1 s", 1.0)
    row(f"`check`, wall, median of {runs}", "wall_s", lambda x: f"{x * 1e3:.0f} ms")
    row(f"`check`, CPU (user+sys, all processes), median of {runs}", "cpu_s", lambda x: f"{x:.2f} s", "≤ 0.3 s", 0.3)
    for r in results.values():
        r["check_cpu_per_hour_s"] = r["cpu_s"] * CHECKS_PER_HOUR
    row("`check` every 30 s: CPU per hour", "check_cpu_per_hour_s", lambda x: f"{x:.0f} s")
    row(f"`listen` peak RSS, summed over its processes ({events} events)", "rss_sum_kib",
        lambda x: f"{x / 1024:.1f} MiB")
    row("`listen` peak RSS, largest process", "rss_max_kib", lambda x: f"{x / 1024:.1f} MiB")
    row("/tmp used while `listen` runs", "tmp_running", lambda x: f"{x / MB:.1f} MB")
    row("/tmp left after `listen` exits", "tmp_left", lambda x: f"{x / MB:.1f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
