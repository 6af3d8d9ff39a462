"""A stand-in for dockerd in the v5.7–v5.8 images (the dockerd layout: program `docker`, log dind.log).

Usage: python -m tests.allinone.fake_dockerd --address SOCKET [--scenario healthy|graphdriver]
`healthy` writes dockerd-like start lines, then serves SOCKET as the containerd stand-in does
(dockerd starts a containerd of its own, whose lines land in the same log) until SIGTERM.
`graphdriver` is dockerd on a data folder where overlay2 cannot work: it exits 1 after its lines.
"""
from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from tests.allinone import fake_containerd

START = [
    'level=info msg="Starting up"',
    'level=info msg="libcontainerd: started new containerd process" pid=61',
]
GRAPHDRIVER = [
    'level=error msg="\'overlay2\' is not supported over overlayfs" storage-driver=overlay2',
    'level=error msg="AUFS was not found in /proc/filesystems" storage-driver=aufs',
    'level=error msg="failed to mount overlay: invalid argument" storage-driver=overlay2',
    'level=info msg="stopping event stream following graceful shutdown" error="context canceled" module=libcontainerd namespace=plugins.moby',
]
FATAL = "failed to start daemon: error initializing graphdriver: driver not supported: overlay2"


def stamp(line: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return f'time="{now}" {line}'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True, help="unix socket to listen on")
    parser.add_argument("--scenario", choices=["healthy", "graphdriver"], default="healthy")
    args = parser.parse_args(argv)
    for line in START:
        print(stamp(line), flush=True)
    if args.scenario == "graphdriver":
        for line in GRAPHDRIVER:
            print(stamp(line), flush=True)
        print(FATAL, flush=True)
        return 1
    print(stamp('level=info msg="[graphdriver] using prior storage driver: overlay2"'), flush=True)
    return fake_containerd.main(["--address", args.address])


if __name__ == "__main__":
    sys.exit(main())
