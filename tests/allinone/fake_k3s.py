"""A stand-in for k3s: writes real-looking k3s log lines to stdout, then behaves per scenario.

Usage: python -m tests.allinone.fake_k3s --scenario healthy|cgroupv2|conntrack|disk-full|crash|snapshotter
                                         [--api-dir DIR --api-scenario NAME] [--embedded-data-dir DIR]
`healthy` keeps running until SIGTERM; the failures exit 1 after their lines, as k3s does.
With ``--embedded-data-dir`` it behaves like k3s in the v5.9/v5.14+ images (the embedded layout):
it runs "its own containerd", whose lines go to ``DIR/k3s/agent/containerd/containerd.log`` (not
stdout), and imports ``DIR/k3s/agent/images/*.tar`` itself. `snapshotter` is the embedded
containerd failing to load its overlayfs snapshotter (the data folder has no d_type), after
which k3s gives up.
With ``--api-dir``, a healthy k3s also serves the Kubernetes API stand-in
(``python -m tests.kube_api.server --dir DIR --scenario NAME``, which writes ``DIR/kubeconfig.yaml``
and ``DIR/port`` when ready) as its child, and stops it on SIGTERM.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

START = [
    'level=info msg="Starting k3s v1.25.16+k3s4 (e6aa6a1d)"',
    'level=info msg="Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s"',
    'level=info msg="Configuring database table schema and indexes, this may take a moment..."',
    'level=info msg="Database tables and indexes are up to date"',
    'level=info msg="Kine available at unix://kine.sock"',
    'level=info msg="Running kube-apiserver --advertise-address=172.17.0.2 --advertise-port=6443 --allow-privileged=true --token-auth-file=/var/lib/rancher/k3s/server/cred/passwd"',
    'level=info msg="Waiting for API server to become available"',
]
FAILURES = {
    "cgroupv2": [
        'level=info msg="Running kubelet --address=0.0.0.0 --cgroup-driver=cgroupfs --cgroups-per-qos=true"',
        'E1130 08:12:44.123456      59 kubelet.go:1431] "Failed to create cgroup" err="cannot enter cgroupv2 \\"/sys/fs/cgroup/kubepods\\" with domain controllers -- it is in an invalid state"',
        'level=fatal msg="kubelet exited: failed to run Kubelet: cannot enter cgroupv2 \\"/sys/fs/cgroup/kubepods\\" with domain controllers -- it is in an invalid state"',
    ],
    "conntrack": [
        'level=info msg="Set sysctl \'net/netfilter/nf_conntrack_max\' to 196608"',
        'level=error msg="Failed to set sysctl: open /proc/sys/net/netfilter/nf_conntrack_max: permission denied"',
        'F1130 08:12:45.000000      59 server.go:489] open /proc/sys/net/netfilter/nf_conntrack_max: permission denied',
    ],
    "disk-full": [
        'level=fatal msg="extracting data: write /var/lib/rancher/k3s/data/.tmp/usr/lib/libbz2.so.1.0.8: no space left on device"',
    ],
    "crash": [
        'level=fatal msg="starting kubernetes: preparing server: init cluster datastore and https: listen tcp :6443: bind: address already in use"',
    ],
    "snapshotter": [  # after the embedded containerd's lines (embedded_runtime)
        'level=info msg="Waiting for containerd startup: rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService"',
        'level=info msg="Waiting for containerd startup: rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService"',
        'level=fatal msg="failed to wait for containerd: CRI v1 runtime API is not implemented for endpoint \\"unix:///run/k3s/containerd/containerd.sock\\""',
    ],
}


EMBEDDED_CONTAINERD = [
    'level=info msg="starting containerd" revision=383ce4e834e4d2ae5e1869475379e70618bdcc33 version=v1.7.7-k3s1',
    'level=info msg="loading plugin \\"io.containerd.content.v1.content\\"..." type=io.containerd.content.v1',
    'level=info msg="loading plugin \\"io.containerd.snapshotter.v1.overlayfs\\"..." type=io.containerd.snapshotter.v1',
]
EMBEDDED_HEALTHY = [
    'level=info msg="loading plugin \\"io.containerd.grpc.v1.cri\\"..." type=io.containerd.grpc.v1',
    'level=info msg=serving... address=/run/k3s/containerd/containerd.sock',
    'level=info msg="containerd successfully booted in 0.051234s"',
]
EMBEDDED_SNAPSHOTTER = [
    'level=warning msg="failed to load plugin io.containerd.snapshotter.v1.overlayfs" error="{root}/io.containerd.'
    'snapshotter.v1.overlayfs does not support d_type. If the backing filesystem is xfs, please reformat with ftype=1 '
    'to enable d_type support"',
    'level=info msg="loading plugin \\"io.containerd.grpc.v1.cri\\"..." type=io.containerd.grpc.v1',
    'level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" error="failed to create CRI service: '
    'failed to find snapshotter \\"overlayfs\\""',
    'level=info msg=serving... address=/run/k3s/containerd/containerd.sock',
]


def stamp(line: str) -> str:
    if line.startswith("level="):
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f'time="{now}" {line}'
    return line


def start_api(folder: Path, scenario: str, stop: threading.Event, timeout: float = 30.0) -> subprocess.Popen[bytes] | None:
    """Start the API stand-in and wait until it is ready; ``None`` (after a fatal line) if it is not."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("port", "kubeconfig.yaml"):
        (folder / stale).unlink(missing_ok=True)
    api = subprocess.Popen([sys.executable, "-m", "tests.kube_api.server", "--dir", str(folder), "--scenario", scenario])
    deadline = time.monotonic() + timeout
    while not ((folder / "port").exists() and (folder / "kubeconfig.yaml").exists()):
        if api.poll() is not None or time.monotonic() > deadline or stop.is_set():
            if not stop.is_set():
                print(stamp('level=fatal msg="apiserver exited: the API stand-in did not come up"'), flush=True)
            stop_api(api)
            return None
        stop.wait(0.1)
    port = (folder / "port").read_text().strip()
    print(stamp(f'level=info msg="Wrote kubeconfig {folder / "kubeconfig.yaml"}"'), flush=True)
    print(stamp(f'level=info msg="Tunnel server egress proxy mode: agent" port={port}'), flush=True)
    print(stamp('level=info msg="Node controller sync successful"'), flush=True)
    return api


def stop_api(api: subprocess.Popen[bytes] | None) -> None:
    if api is None or api.poll() is not None:
        return
    api.terminate()
    try:
        api.wait(timeout=10)
    except subprocess.TimeoutExpired:
        api.kill()
        api.wait(timeout=10)


def embedded_runtime(data_dir: Path, failing: bool) -> None:
    """k3s's own containerd (the embedded layout): its lines go to its log file under the data folder."""
    root = data_dir / "k3s" / "agent" / "containerd"
    root.mkdir(parents=True, exist_ok=True)
    log = root / "containerd.log"
    print(stamp(f'level=info msg="Logging containerd to {log}"'), flush=True)
    print(stamp(f'level=info msg="Running containerd -c {data_dir}/k3s/agent/etc/containerd/config.toml '
                f'-a /run/k3s/containerd/containerd.sock --state /run/k3s/containerd --root {root}"'), flush=True)
    lines = EMBEDDED_CONTAINERD + (EMBEDDED_SNAPSHOTTER if failing else EMBEDDED_HEALTHY)
    with open(log, "a", encoding="utf-8") as fh:
        fh.writelines(stamp(line.replace("{root}", str(root))) + "\n" for line in lines)


def import_images(data_dir: Path) -> None:
    """v5.14+: k3s imports the platform images from its agent/images folder itself."""
    folder = data_dir / "k3s" / "agent" / "images"
    for archive in sorted(folder.glob("*.tar")) if folder.is_dir() else []:
        print(stamp(f'level=info msg="Importing images from {archive}"'), flush=True)
        print(stamp(f'level=info msg="Imported images from {archive} in 2.104s"'), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="healthy", choices=["healthy", *FAILURES])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before failing")
    parser.add_argument("--api-dir", type=Path, help="serve the Kubernetes API stand-in from this folder")
    parser.add_argument("--api-scenario", default="healthy", help="scenario of the API stand-in")
    parser.add_argument("--embedded-data-dir", type=Path, help="run as in the embedded layout, with this data folder")
    args = parser.parse_args(argv)
    for line in START:
        print(stamp(line), flush=True)
    if args.embedded_data_dir is not None:
        embedded_runtime(args.embedded_data_dir, failing=args.scenario == "snapshotter")
        if args.scenario != "snapshotter":
            import_images(args.embedded_data_dir)
    elif args.scenario == "snapshotter":
        print(stamp('level=fatal msg="the snapshotter scenario needs --embedded-data-dir"'), flush=True)
        return 2
    if args.scenario == "healthy":
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        api = start_api(args.api_dir, args.api_scenario, stop) if args.api_dir else None
        if args.api_dir and api is None:
            return 1
        print(stamp('level=info msg="k3s is up and running"'), flush=True)
        try:
            while not stop.wait(0.2):
                if api is not None and api.poll() is not None:
                    print(stamp(f'level=fatal msg="apiserver exited: exit status {api.returncode}"'), flush=True)
                    return 1
        finally:
            stop_api(api)
        print(stamp('level=info msg="Received SIGTERM, shutting down"'), flush=True)
        return 0
    time.sleep(args.delay)
    for line in FAILURES[args.scenario]:
        print(stamp(line), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
