"""A real supervisord in a temporary folder, with the shipped [eventlistener:watchdog] section.

The test decides the programs; the listener section is included verbatim from
``conf/supervisord-watchdog.conf``. Everything started here is reaped by the caller's Reaper.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import supervisor3
from tests.allinone.simulation import supervisord_head
from tests.allinone.simulation import toml_text as _toml
from tests.helpers import Reaper, wait_for
from watchdog.sources.supervisor_rpc import SupervisorRpc

REPO = Path(__file__).resolve().parents[2]
LISTENER_CONF = REPO / "conf" / "supervisord-watchdog.conf"
VENV_BIN = Path(sys.executable).parent


GENERATIONS = (4, 3)
"""supervisor 4.3 on Python 3 (the project's venv) and 3.3.1 on Python 2.7 (the image's)."""


def supervisord_binary() -> str:
    found = VENV_BIN / "supervisord"
    return str(found) if found.exists() else (shutil.which("supervisord") or "supervisord")


def supervisord_argv(generation: int) -> list[str]:
    """argv prefix of supervisord of that generation; skips the test where 3.3.1 cannot run."""
    if generation == 4:
        return [supervisord_binary()]
    try:
        return supervisor3.supervisord_command()
    except supervisor3.Supervisor3Unavailable as e:
        pytest.skip(f"supervisor {supervisor3.VERSION}: {e}")


@dataclass
class Program:
    name: str
    command: str
    stdout_logfile: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def section(self) -> str:
        lines = [f"[program:{self.name}]", f"command={self.command}"]
        defaults = {"autostart": "true", "autorestart": "true", "startsecs": "1", "startretries": "2",
                    "stopwaitsecs": "5", "redirect_stderr": "true", "directory": str(REPO)}
        defaults.update(self.extra)
        lines += [f"{k}={v}" for k, v in defaults.items()]
        if self.stdout_logfile:
            lines += [f"stdout_logfile={self.stdout_logfile}", "stdout_logfile_maxbytes=0"]
        return "\n".join(lines) + "\n"


class Supervisor:
    """Start, ask, and stop a real supervisord whose config lives in ``root``."""

    def __init__(self, root: Path, reaper: Reaper, programs: list[Program], watchdog_config: dict[str, Any],
                 generation: int = 4, extra_sections: str = "", include: tuple[str, ...] = ()) -> None:
        self.root = root
        self.generation = generation
        self.extra_sections = extra_sections
        self.include = include
        """More ``[include] files`` globs (conf.d-style files), after the listener's section."""
        self.reaper = reaper
        self.programs = programs
        self.sock = root / "supervisor.sock"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.status_file = root / "status" / "diagnosis.json"
        self.conf = root / "supervisord.conf"
        self.stderr_path = root / "supervisord.stderr"
        self.log_path = root / "supervisord.log"
        self.watchdog_toml = root / "watchdog.toml"
        # JSON lines: these tests read the listener's stderr as a log shipper would.
        self.watchdog_toml.write_text(_toml({"status_file": str(self.status_file), "log_dir": str(self.logs),
                                             "alert_format": "json", **watchdog_config}))
        self.proc: subprocess.Popen[Any] | None = None

    def write_conf(self) -> None:
        head = supervisord_head(self.sock, self.log_path, self.root / "supervisord.pid", self.logs,
                                self.watchdog_toml, loglevel="debug")
        if self.include:
            head = head.replace(f"files={LISTENER_CONF}", " ".join([f"files={LISTENER_CONF}", *self.include]))
        body = "\n".join(p.section() for p in self.programs)
        self.conf.write_text(head + "\n" + body + self.extra_sections)

    def start(self) -> None:
        self.write_conf()
        err = open(self.stderr_path, "wb")
        # supervisor 3 looks commands up on its own PATH (4 also on the program's `environment`).
        env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.proc = self.reaper.spawn([*supervisord_argv(self.generation), "-c", str(self.conf)], stdout=err, stderr=err,
                                      cwd=str(self.root), env=env)
        wait_for(self.sock.exists, 15, what="supervisord socket")

    @property
    def rpc(self) -> SupervisorRpc:
        return SupervisorRpc(f"unix://{self.sock}", timeout=5)

    def state(self, name: str) -> str:
        info = self.rpc.process_info(name)
        return info.state if info else "ABSENT"

    def proxy(self) -> Any:
        return self.rpc._proxy.supervisor

    def listener_stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def supervisord_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proxy().shutdown()
            except (OSError, xmlrpc.client.Error):
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
