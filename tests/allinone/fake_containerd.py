"""A stand-in for containerd (used when the real one is not installed or we are not root).

Usage: python -m tests.allinone.fake_containerd --address SOCKET
Writes containerd-like log lines to stdout, then accepts connections on the unix socket until
SIGTERM, like containerd's gRPC listener. Nothing is spoken on the socket: callers only check
that it accepts a connection (the image's script runs `nerdctl ps`).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime


def log(level: str, msg: str, **fields: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    extra = "".join(f' {k}="{v}"' for k, v in fields.items())
    print(f'time="{now}" level={level} msg="{msg}"{extra}', flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True, help="unix socket to listen on")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    log("info", "starting containerd", revision="stand-in", version="1.6.20~stand-in")
    for plugin in ("io.containerd.content.v1.content", "io.containerd.snapshotter.v1.overlayfs",
                   "io.containerd.metadata.v1.bolt", "io.containerd.grpc.v1.cri"):
        kind = plugin.rsplit(".", 1)[0]
        log("info", f'loading plugin \\"{plugin}\\"...', type=kind)
    try:
        os.unlink(args.address)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(args.address)
    except OSError as e:
        log("fatal", f"failed to create listener: listen unix {args.address}: bind: {e.strerror}")
        return 1
    server.listen(16)
    server.settimeout(0.2)
    log("info", "serving...", address=args.address)
    log("info", "containerd successfully booted in 0.012345s")
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        conn.close()
    log("info", "Stop CRI service")
    server.close()
    try:
        os.unlink(args.address)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
