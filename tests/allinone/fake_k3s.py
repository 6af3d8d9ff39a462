"""A stand-in for k3s: writes real-looking k3s log lines to stdout, then behaves per scenario.

Usage: python -m tests.allinone.fake_k3s --scenario healthy|cgroupv2|conntrack|disk-full|crash
`healthy` keeps running until SIGTERM; the failures exit 1 after their lines, as k3s does.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime, timezone

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
}


def stamp(line: str) -> str:
    if line.startswith("level="):
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f'time="{now}" {line}'
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="healthy", choices=["healthy", *FAILURES])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before failing")
    args = parser.parse_args(argv)
    for line in START:
        print(stamp(line), flush=True)
    if args.scenario == "healthy":
        stop = False

        def on_term(signum: int, frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_term)
        print(stamp('level=info msg="k3s is up and running"'), flush=True)
        while not stop:
            time.sleep(0.2)
        print(stamp('level=info msg="Received SIGTERM, shutting down"'), flush=True)
        return 0
    time.sleep(args.delay)
    for line in FAILURES[args.scenario]:
        print(stamp(line), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
