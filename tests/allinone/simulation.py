"""A simulated allinone under a real supervisord in a temporary folder (used by `make demo` and tests).

The layout mirrors the image: programs ``containerd``, ``k3s`` and ``console`` started by an init
program through ``supervisorctl`` (as ``entrypoint-dind.sh`` does), the shipped
``[eventlistener:watchdog]`` section included verbatim, logs in ``logs/``, data in ``data/``.

Every process started here carries ``RAINBOND_DEMO_RUN=<token>`` in its environment (supervisord
passes its own environment to its children, which make their own process groups). ``stop()``
shuts supervisord down over XML-RPC, then finds whatever still carries the token in /proc and
ends it by process group, and says what it found. No pytest here: the demo runs outside it.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.config import ConfigError, settings_from_dict

REPO = Path(__file__).resolve().parents[2]
LISTENER_CONF = REPO / "conf" / "supervisord-watchdog.conf"
KUBE_API_SERVER = REPO / "tests" / "kube_api" / "server.py"
VENV_BIN = Path(sys.executable).parent
RUN_ENV = "RAINBOND_DEMO_RUN"
"""Marks every process of one simulated allinone (read back from /proc/PID/environ)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    """What `make demo SCENARIO=...` takes."""
    story: str
    """One line for the person watching."""
    k3s: str = "healthy"
    """The k3s stand-in's scenario (tests/allinone/fake_k3s.py)."""
    api: str | None = None
    """The Kubernetes API stand-in's scenario; ``None``: no API."""
    images: str = "ok"
    """The init program's image load: ``ok`` or ``bind-mount`` (loops failing)."""
    expected: tuple[str, ...] = ()
    """The diagnosis ends the wait when any of these problem ids is active; empty: wait for healthy."""
    docker: str = "healthy"
    """The dockerd stand-in's scenario (tests/allinone/fake_dockerd.py), in the dockerd layout."""
    layouts: tuple[str, ...] = ("dockerd", "containerd", "embedded")
    """The image layouts (`make demo LAYOUT=...`) the scenario makes sense in."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "every phase comes up: the runtime, images, k3s, the region's pods, the console",
                 api="healthy"),
        Scenario("cgroupv2", "k3s dies entering cgroup v2 (Docker Desktop above 4.2.0 with an old image)",
                 k3s="cgroupv2", expected=("k3s.cgroupv2-unsupported",)),
        Scenario("conntrack", "kube-proxy inside k3s may not set nf_conntrack_max",
                 k3s="conntrack", expected=("k3s.conntrack-permission-denied",)),
        Scenario("disk-full", "k3s cannot unpack itself: no space left on device",
                 k3s="disk-full", expected=("host.disk-full",)),
        Scenario("crashloop", "k3s is up but a region pod is in CrashLoopBackOff",
                 api="crashloop", expected=("region.pod-crashloop",)),
        Scenario("bind-mount", "/app/data is a Windows/macOS host folder: loading the images fails, again and again",
                 images="bind-mount", expected=("images.bind-mount-storage", "images.load-failed"),
                 layouts=("dockerd", "containerd")),
        Scenario("snapshotter", "k3s's embedded containerd cannot load its overlayfs snapshotter (no d_type under "
                 "/app/data), so k3s gives up", k3s="snapshotter", expected=("containerd.snapshotter-failed",),
                 layouts=("embedded",)),
        Scenario("graphdriver", "dockerd cannot use overlay2 on its data folder and exits", docker="graphdriver",
                 expected=("containerd.storage-driver-failed",), layouts=("dockerd",)),
    )
}
LAYOUT_PROGRAMS = {"dockerd": "docker", "containerd": "containerd", "embedded": None}
"""The runtime program of each image layout (README, "Image layouts"); embedded has none."""
LAYOUT_LOGS = {"dockerd": "dind.log", "containerd": "containerd.log"}


def kube_api_available() -> bool:
    return KUBE_API_SERVER.is_file()


def real_containerd() -> str | None:
    """The containerd binary when it can run here (installed and we are root), else ``None``."""
    found = shutil.which("containerd")
    return found if found and os.geteuid() == 0 else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- processes by marker


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return marker in fh.read().split(b"\0")
    except OSError:
        return False


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :].startswith(b"Z")


def processes_with(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``RAINBOND_DEMO_RUN=token``, not ours."""
    marker = f"{RUN_ENV}={token}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and _environ_has(int(entry), marker):
            if not _zombie(int(entry)):
                out.append(int(entry))
    return sorted(out)


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def end_process_groups(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGTERM the process groups of ``pids``, then SIGKILL what is left; returns what survived."""
    pids = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                pgid = os.getpgid(pid)
                if pgid in (0, 1, os.getpgrp()):
                    os.kill(pid, sig)  # a group we must not signal as a whole
                else:
                    os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if poll_until(lambda: all(_zombie(p) for p in pids), timeout, 0.05):
            return []
    return [p for p in pids if not _zombie(p)]


def poll_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (falsy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ----------------------------------------------------------------------------- config files


def toml_text(d: Mapping[str, Any], prefix: str = "") -> str:
    """Tiny TOML writer (strings, numbers, booleans, lists, nested tables)."""
    scalars: list[tuple[str, Any]] = []
    tables: list[tuple[str, Any]] = []
    for k, v in d.items():
        (tables if isinstance(v, Mapping) else scalars).append((k, v))
    out = "".join(f"{k} = {_value(v)}\n" for k, v in scalars)
    for k, v in tables:
        name = f"{prefix}{k}"
        out += f"\n[{name}]\n" + toml_text(v, name + ".")
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(v)


def supervisord_head(sock: Path, log: Path, pidfile: Path, childlogdir: Path, watchdog_toml: Path,
                     loglevel: str = "info", extra_env: str = "") -> str:
    """The supervisord.conf of a simulated allinone, up to its programs: socket, RPC, and the
    shipped [eventlistener:watchdog] section included verbatim (used by the demo and the tests)."""
    env_path = f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env = f'RAINBOND_WATCHDOG_CONFIG="{watchdog_toml}",PATH="{env_path}",PYTHONPATH="{REPO}"'
    if extra_env:
        env += "," + extra_env
    return textwrap.dedent(f"""\
        [unix_http_server]
        file={sock}
        chmod=0700

        [supervisord]
        nodaemon=true
        logfile={log}
        logfile_maxbytes=0
        loglevel={loglevel}
        pidfile={pidfile}
        childlogdir={childlogdir}
        environment={env}

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [supervisorctl]
        serverurl=unix://{sock}

        [include]
        files={LISTENER_CONF}
        """)


def known_keys_only(wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Drop the keys this checkout's config does not know yet (other work may add them later)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in wanted.items()}
    dropped: list[str] = []
    for _ in range(50):
        try:
            settings_from_dict(data, source="demo")
            return data, dropped
        except ConfigError as e:
            parts = str(e).split(": ")
            if len(parts) < 3 or not parts[-1].startswith("unknown key"):
                raise
            key = parts[1]
            table: Any = data
            *path, last = key.split(".")
            for p in path:
                table = table[p]
            del table[last]
            dropped.append(key)
    raise RuntimeError("demo config: too many unknown keys")  # pragma: no cover


# ----------------------------------------------------------------------------- the allinone


@dataclass
class Allinone:
    """One simulated allinone in ``root``; ``start()``, watch ``status_file``, ``stop()``."""

    root: Path
    scenario: Scenario
    containerd: str | None = field(default_factory=real_containerd)
    """The real containerd binary, or ``None`` for the stand-in."""
    token: str = field(default_factory=lambda: os.environ.get(RUN_ENV) or secrets.token_hex(8))
    proc: subprocess.Popen[bytes] | None = None
    dropped_keys: list[str] = field(default_factory=list)
    supervisor: int = 4
    """supervisord's generation: 4 (the venv's, Python 3) or 3 (3.3.1 on Python 2.7, as in the image)."""
    layout: str = "containerd"
    """The image layout simulated: ``dockerd`` (v5.7-v5.8), ``containerd`` (v5.10-v5.13), ``embedded`` (v5.14+)."""

    def __post_init__(self) -> None:
        r = self.root
        self.logs = r / "logs"
        self.data = r / "data"
        self.api_dir = r / "k3s"
        self.status_file = r / "status" / "diagnosis.json"
        self.conf = r / "supervisord.conf"
        self.sock = r / "supervisor.sock"
        self.supervisord_log = r / "supervisord.log"
        self.stderr_path = r / "supervisord.stderr"
        """supervisord's stderr, where the listener's alerts go (``stderr_logfile=/dev/fd/2``)."""
        self.watchdog_toml = r / "watchdog.toml"
        self.containerd_dir = r / "containerd"
        self.containerd_sock = self.containerd_dir / "containerd.sock"
        self.console_port = free_port()

    @property
    def init_log(self) -> Path:
        return self.logs / "init.log"

    # -- files

    def watchdog_settings(self) -> dict[str, Any]:
        """The watchdog config: this folder's paths and short deadlines so the demo ends quickly."""
        wanted: dict[str, Any] = {
            "status_file": str(self.status_file),
            "log_dir": str(self.logs),
            "language": "zh,en",
            "resolve_after_seconds": 5.0,
            "programs": {
                "containerd": {"deadline_seconds": 30.0},
                "k3s": {"deadline_seconds": 40.0},
                "console": {"deadline_seconds": 40.0},
            },
            "kubernetes": {
                "kubeconfig": str(self.api_dir / "kubeconfig.yaml"),
                "poll_seconds": 2.0,
                "timeout_seconds": 2.0,
                "api_grace_seconds": 20.0,
                "pod_start_grace_seconds": 5.0,
                "not_ready_seconds": 10.0,
            },
            # The demo judges the simulated allinone, not the machine it runs on: low host thresholds.
            "host": {"paths": [str(self.data), str(self.logs), str(self.data / "containerd")], "poll_seconds": 5.0,
                     "data_dir": str(self.data), "disk_low_percent": 1.0, "disk_full_percent": 0.5,
                     "inodes_low_percent": 1.0, "min_memory_mb": 256, "min_cpus": 1, "min_free_disk_mb": 1024},
            "console": {"port": self.console_port, "host": "127.0.0.1", "timeout_seconds": 2.0, "poll_seconds": 2.0,
                        "grace_seconds": 10.0},
            "phases": {"images_deadline_seconds": 40.0, "region_deadline_seconds": 60.0},
        }
        data, self.dropped_keys = known_keys_only(wanted)
        return data

    def containerd_command(self) -> str:
        if self.containerd is None:
            return f"{sys.executable} -m tests.allinone.fake_containerd --address {self.containerd_sock}"
        conf = self.containerd_dir / "config.toml"
        conf.write_text(
            "version = 2\n"
            f'root = "{self.data / "containerd"}"\n'
            f'state = "{self.containerd_dir / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.containerd_sock}"\n'
        )
        return f"{self.containerd} --config {conf}"

    @property
    def runtime_program(self) -> str | None:
        """``containerd``, ``docker``, or ``None`` in the embedded layout (k3s runs its own)."""
        return LAYOUT_PROGRAMS[self.layout]

    def programs(self) -> dict[str, dict[str, str]]:
        s = self.scenario
        py = sys.executable
        k3s = f"{py} -m tests.allinone.fake_k3s --scenario {s.k3s}"
        if s.api:
            k3s += f" --api-dir {self.api_dir} --api-scenario {s.api}"
        if self.layout == "embedded":
            k3s += f" --embedded-data-dir {self.data}"
        init = (f"{py} -m tests.allinone.init --conf {self.conf} --containerd-socket {self.containerd_sock}"
                f" --images {s.images} --data-dir /app/data --console-port {self.console_port} --timeout 45"
                f" --runtime {self.runtime_program or 'none'}")
        if s.api:
            init += f" --api-dir {self.api_dir}"
        if self.supervisor == 3:
            init += " --supervisor 3"
        common = {"directory": str(REPO), "stopwaitsecs": "5", "stopasgroup": "true", "killasgroup": "true",
                  "stdout_logfile_maxbytes": "0", "stderr_logfile_maxbytes": "0"}
        runtime: dict[str, dict[str, str]] = {}
        if self.runtime_program is not None:
            command = self.containerd_command() if self.layout == "containerd" else \
                f"{py} -m tests.allinone.fake_dockerd --address {self.containerd_sock} --scenario {s.docker}"
            # The dockerd stand-in imports more than the containerd one: on a busy machine its start
            # to a quick failure may exceed 1 s, which supervisord would count as a good start.
            startsecs = "1" if self.layout == "containerd" else "5"
            runtime[self.runtime_program] = {
                **common, "command": command, "autostart": "false", "autorestart": "true", "startsecs": startsecs,
                "startretries": "3", "priority": "10", "redirect_stderr": "true",
                "stdout_logfile": str(self.logs / LAYOUT_LOGS[self.layout])}
        return {
            **runtime,
            "k3s": {**common, "command": k3s, "autostart": "false", "autorestart": "true", "startsecs": "2",
                    "startretries": "2", "priority": "20", "redirect_stderr": "true",
                    "stdout_logfile": str(self.logs / "k3s.log")},
            "console": {**common, "command": f"{py} -m tests.allinone.fake_console --port {self.console_port}",
                        "autostart": "false", "autorestart": "true", "startsecs": "1", "priority": "30",
                        "stdout_logfile": str(self.logs / "console.log"),
                        "stderr_logfile": str(self.logs / "console_error.log")},
            # The image's entrypoint: its output reaches the listener as PROCESS_LOG events.
            "init": {**common, "command": init, "autostart": "true", "autorestart": "false", "startsecs": "0",
                     "priority": "900", "redirect_stderr": "true", "stdout_events_enabled": "true",
                     "stdout_logfile": str(self.init_log)},
        }

    def write_files(self) -> None:
        for d in (self.logs, self.data, self.api_dir, self.status_file.parent, self.containerd_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.watchdog_toml.write_text(toml_text(self.watchdog_settings()))
        if self.layout == "embedded":
            # v5.14+: the platform images wait in k3s's agent/images folder; k3s imports them itself.
            images = self.data / "k3s" / "agent" / "images"
            images.mkdir(parents=True, exist_ok=True)
            (images / "rainbond-v5.17.3-release.tar").write_bytes(b"")
        head = supervisord_head(self.sock, self.supervisord_log, self.root / "supervisord.pid", self.logs,
                                self.watchdog_toml, loglevel="info", extra_env='PYTHONUNBUFFERED="1"')
        body = ""
        for name, opts in self.programs().items():
            body += f"\n[program:{name}]\n" + "".join(f"{k}={v}\n" for k, v in opts.items())
        self.conf.write_text(head + body)

    # -- life

    def start(self, timeout: float = 20.0) -> None:
        self.write_files()
        # supervisor 3 looks commands up on its own PATH (4 also on the program's `environment`).
        env = {**os.environ, RUN_ENV: self.token, "PYTHONPATH": str(REPO),
               "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        # Append mode: the listener reopens this file as /dev/fd/2 and must not overwrite it.
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [*self.supervisord_argv(), "-c", str(self.conf)],
                stdout=subprocess.DEVNULL, stderr=err, cwd=str(self.root), env=env, start_new_session=True,
            )
        finally:
            err.close()
        if not poll_until(lambda: self.sock.exists() or self.proc is None or self.proc.poll() is not None, timeout):
            raise RuntimeError(f"supervisord did not open {self.sock} within {timeout:.0f} s")
        if self.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited at once ({self.proc.returncode}); see {self.stderr_path}")

    def supervisord_argv(self) -> list[str]:
        """supervisord of the chosen generation (3 raises ``Supervisor3Unavailable`` without Python 2.7)."""
        if self.supervisor == 3:
            from tests.supervisor3 import supervisord_command

            return supervisord_command()
        binary = VENV_BIN / "supervisord"
        return [str(binary) if binary.exists() else "supervisord"]

    def rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def states(self) -> dict[str, str]:
        try:
            return {i["name"]: i["statename"] for i in self.rpc().getAllProcessInfo()}
        except (OSError, xmlrpc.client.Error):
            return {}

    def stop(self, timeout: float = 30.0) -> tuple[int, list[str]]:
        """Shut supervisord down, then end what is left by process group.

        Returns how many leftover processes had to be ended and the commands of any survivors.
        """
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.rpc().shutdown()
            except (OSError, xmlrpc.client.Error):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        leftovers = processes_with(self.token)
        survivors = end_process_groups(leftovers)
        return len(leftovers), [f"{pid} {command_of(pid)}" for pid in survivors]
