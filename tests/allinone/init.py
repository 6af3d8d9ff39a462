"""The simulated allinone's init program: drives the boot like the image's ``entrypoint-dind.sh``.

Usage: python -m tests.allinone.init --conf SUPERVISORD_CONF --containerd-socket SOCKET
       [--images ok|bind-mount] [--api-dir DIR] [--console-port PORT] [--timeout SECONDS]
       [--runtime containerd|docker|none]

Phases, as in the image: `supervisorctl -c CONF start containerd` and wait for its socket; load the
platform images (nerdctl-load-like lines; `bind-mount` loops failing as nerdctl does on a Windows
or macOS host folder mounted at /app/data); `supervisorctl start k3s` and wait for it (and, with
``--api-dir``, for the API stand-in's kubeconfig); wait for the rbd-system pods to be ready;
`supervisorctl start console` and wait for its HTTP port. Lines go to stdout, which supervisord
turns into PROCESS_LOG events for the watchdog (``stdout_events_enabled=true``).
Runs under supervisord: ``SUPERVISOR_SERVER_URL`` is in its environment. Ends on SIGTERM.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xmlrpc.client
from datetime import datetime
from pathlib import Path
from typing import Any

VERSION = "v5.17.3-release"
IMAGES = (
    "rainbond-operator", "rbd-api", "rbd-chaos", "rbd-db", "rbd-etcd", "rbd-eventlog", "rbd-gateway",
    "rbd-hub", "rbd-monitor", "rbd-mq", "rbd-node", "rbd-resource-proxy", "rbd-webcli", "rbd-worker",
)
NAMESPACE = "rbd-system"
STOP = threading.Event()
COLOURS = {"INFO": "\033[32;1m", "WARN": "\033[33;1m", "ERROR": "\033[0;31m"}
"""The script's GREEN, YELLOW and RED; every line ends in NC (``\033[0m``)."""
NC = "\033[0m"
SUPERVISORCTL = ["supervisorctl"]
"""argv prefix of supervisorctl: supervisor 3.3.1's own under ``--supervisor 3``."""


def say(level: str, msg: str) -> None:
    """One line like the image's script: `echo -e "${GREEN}$(date "+%Y-%m-%d %H:%M:%S") INFO: ... ${NC}"`.

    The waiting lines end in a run of `·` right before NC; the others in a space before it.
    """
    gap = "" if msg.endswith("\u00b7") else " "
    print(f"{COLOURS[level]}{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {level}: {msg}{gap}{NC}", flush=True)


def out(line: str) -> None:
    print(line, flush=True)


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def go_time() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- supervisord


def supervisorctl(conf: str, *args: str) -> None:
    subprocess.run([*SUPERVISORCTL, "-c", conf, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30, check=False)


def rpc() -> Any:
    from supervisor.xmlrpc import SupervisorTransport

    url = os.environ.get("SUPERVISOR_SERVER_URL", "")
    transport = SupervisorTransport(None, None, url)
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def state_of(program: str) -> str:
    try:
        return str(rpc().getProcessInfo(program)["statename"])
    except (OSError, xmlrpc.client.Error):
        return "UNKNOWN"


def wait(check: Any, timeout: float | None, interval: float = 0.5) -> bool:
    """Poll ``check`` until true, ``timeout`` (None: forever) or SIGTERM."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not STOP.is_set():
        if check():
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        STOP.wait(interval)
    return False


# ----------------------------------------------------------------------------- phases


def socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def start_containerd(conf: str, sock: str, timeout: float, program: str = "containerd") -> bool:
    """Start the runtime program (``containerd``; ``docker`` in the v5.7-v5.8 images) and wait for its socket."""
    name, log = ("Docker", "dind.log") if program == "docker" else ("Containerd", "containerd.log")
    supervisorctl(conf, "start", program)
    say("INFO", f"{name} is starting, please wait ············································")
    if wait(lambda: socket_answers(sock), timeout):
        say("INFO", f"{name} started successfully")
        return True
    if not STOP.is_set():
        say("ERROR", f"{name} failed to start. Please use the command to view the {program} log "
                     f"'docker exec rainbond-allinone /bin/cat /app/logs/{log}'")
    return False


def load_once(mode: str, data_dir: str) -> bool:
    """One `nerdctl -n k8s.io load -i /app/ui/rainbond-VERSION.tar`."""
    for n, name in enumerate(IMAGES):
        ref = f"docker.io/rainbond/{name}:{VERSION}"
        if STOP.wait(0.05):
            return False
        if mode == "bind-mount" and n == 1:
            layer = digest(name + "layer")
            mount = f"{data_dir}/containerd/tmpmounts/containerd-mount{int(time.time()) % 1000000000}"
            key = f"extract-{int(time.time() * 1000) % 1000000000}-Xq3v {digest(name + 'chain')}"
            out(f"unpacking {ref} ({digest(name)})...")
            out(f'time="{go_time()}" level=info msg="apply failure, attempting cleanup" '
                f'error="failed to extract layer {layer}: failed to mount {mount}: mount source: \\"overlay\\", '
                f'target: \\"{mount}\\", fstype: overlay, flags: 0, err: operation not permitted: unknown" key="{key}"')
            out(f'time="{go_time()}" level=fatal msg="failed to extract layer {layer}: failed to mount {mount}: '
                f'operation not permitted: unknown"')
            return False
        out(f"unpacking {ref} ({digest(name)})...done")
        out(f"Loaded image: {ref}")
    return True


def load_images(mode: str, data_dir: str, retry_seconds: float) -> bool:
    say("INFO", "Start loaded images ···························")
    while not STOP.is_set():
        if load_once(mode, data_dir):
            say("INFO", "Load container images successfully")
            return True
        # The image's script retries at once and for ever; a pause keeps the demo's log readable.
        STOP.wait(retry_seconds)
    return False


def start_k3s(conf: str, api_dir: Path | None, timeout: float) -> bool:
    supervisorctl(conf, "start", "k3s")
    say("INFO", "K3s is starting, please wait ············································")

    def up() -> bool:
        state = state_of("k3s")
        if state == "FATAL":
            raise LookupError(state)
        api_ready = api_dir is None or ((api_dir / "kubeconfig.yaml").exists() and (api_dir / "port").exists())
        return state == "RUNNING" and api_ready

    try:
        if wait(up, timeout):
            say("INFO", "K3s Started successfully")
            return True
    except LookupError:
        pass
    if not STOP.is_set():
        say("ERROR", "K3s failed to start. Please use the command to view the k3s log "
                     "'docker exec rainbond-allinone /bin/cat /app/logs/k3s.log'")
    return False


class Kube:
    """The few API reads the script does with `k3s kubectl`, from the stand-in's kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        import yaml  # a dependency of the kubernetes client

        doc = yaml.safe_load(kubeconfig.read_text())
        cluster = doc["clusters"][0]["cluster"]
        user = (doc.get("users") or [{}])[0].get("user") or {}
        self.server = cluster["server"].rstrip("/")
        self.headers = {"Accept": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        ctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            ctx.load_verify_locations(cafile=cluster["certificate-authority"])
        if user.get("client-certificate-data"):
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                ctx.load_cert_chain(cert, key)
        elif user.get("client-certificate"):
            ctx.load_cert_chain(user["client-certificate"], user.get("client-key"))
        self.ctx = ctx

    def get(self, path: str) -> Any:
        # The URL is the stand-in's kubeconfig server, always https://127.0.0.1:PORT.
        req = urllib.request.Request(self.server + path, headers=self.headers)  # noqa: S310
        with urllib.request.urlopen(req, timeout=3, context=self.ctx) as resp:  # noqa: S310
            return json.loads(resp.read())

    def pods_ready(self) -> tuple[int, int]:
        items = self.get(f"/api/v1/namespaces/{NAMESPACE}/pods").get("items", [])
        ready = 0
        for pod in items:
            conds = (pod.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                ready += 1
        return ready, len(items)


def start_region(api_dir: Path) -> bool:
    kube = Kube(api_dir / "kubeconfig.yaml")
    say("INFO", f"Namespace {NAMESPACE} already exists")
    say("INFO", "Helm rainbond-operator already exists")
    say("INFO", "Rainbond Region is starting, please wait ············································")
    last: tuple[int, int] | None = None

    def ready() -> bool:
        nonlocal last
        try:
            counts = kube.pods_ready()
        except (OSError, ValueError):
            return False
        last = counts
        return counts[1] > 0 and counts[0] == counts[1]

    # The script waits for the region for ever; so does this.
    if wait(ready, None, interval=1.0):
        say("INFO", f"Rainbond Region started successfully ({last[0] if last else 0} pods ready)")
        return True
    return False


def start_console(conf: str, port: int, timeout: float) -> bool:
    supervisorctl(conf, "start", "console")
    say("INFO", "Rainbond console is starting, please wait ············································")

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2) as resp:
                return bool(resp.status < 500)
        except OSError:
            return False

    if wait(answers, timeout):
        say("INFO", f"Rainbond started successfully, Please pass http://127.0.0.1:{port} Access Rainbond")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conf", required=True, help="supervisord config (for supervisorctl -c)")
    parser.add_argument("--containerd-socket", required=True)
    parser.add_argument("--images", choices=["ok", "bind-mount"], default="ok")
    parser.add_argument("--data-dir", default="/app/data", help="shown in image-load errors")
    parser.add_argument("--api-dir", type=Path, help="the API stand-in's folder (kubeconfig.yaml, port)")
    parser.add_argument("--console-port", type=int, default=7070)
    parser.add_argument("--timeout", type=float, default=60.0, help="per-phase wait for containerd, k3s, console")
    parser.add_argument("--retry-seconds", type=float, default=3.0, help="pause between failed image loads")
    parser.add_argument("--supervisor", type=int, choices=[3, 4], default=4,
                        help="3: drive supervisord with supervisor 3.3.1's own supervisorctl (Python 2.7)")
    parser.add_argument("--runtime", choices=["containerd", "docker", "none"], default="containerd",
                        help="the runtime program of the image layout; none: k3s's own (v5.14+, k3s loads the images)")
    args = parser.parse_args(argv)
    if args.supervisor == 3:
        from tests.supervisor3 import supervisorctl_command

        SUPERVISORCTL[:] = supervisorctl_command()
    signal.signal(signal.SIGTERM, lambda signum, frame: STOP.set())
    say("INFO", "Rainbond allinone (simulated) is starting")
    if args.runtime != "none":  # the embedded layout (v5.14+) has no runtime program and no image load here
        if not start_containerd(args.conf, args.containerd_socket, args.timeout, args.runtime):
            return 0 if STOP.is_set() else 1
        if not load_images(args.images, args.data_dir, args.retry_seconds):
            return 0
    if not start_k3s(args.conf, args.api_dir, args.timeout):
        return 0 if STOP.is_set() else 1
    if args.api_dir is not None and not start_region(args.api_dir):
        return 0
    if not start_console(args.conf, args.console_port, args.timeout):
        return 0 if STOP.is_set() else 1
    STOP.wait()  # like the container's main process: stay until stopped
    return 0


if __name__ == "__main__":
    sys.exit(main())
