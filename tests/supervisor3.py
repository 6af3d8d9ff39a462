"""The image's own supervisord: supervisor 3.3.1 on Python 2.7, installed into a folder of its own.

The v5 allinone images run Debian stretch's supervisor 3.3.1 on Python 2.7, which counts the
event header's ``len`` in bytes. Tests and the demo run that exact version next to the project's
supervisor 4: pyenv's 2.7 (or any ``python2.7`` on PATH) installs it with ``pip --target`` into
``.cache/supervisor-3.3.1/`` of the checkout, never into the project's venv. Its ``*-nspkg.pth``
file is only honoured for a site dir, so the commands run it through ``site.addsitedir``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

VERSION = "3.3.1"
REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / ".cache" / f"supervisor-{VERSION}"

_BOOT = "import site, sys; site.addsitedir({target!r}); from supervisor.{module} import main; sys.argv[0] = {name!r}; main()"


class Supervisor3Unavailable(Exception):
    """No Python 2.7 here, or supervisor 3.3.1 could not be installed for it (the reason says which)."""


def python27() -> str | None:
    """The path of a Python 2.7 interpreter: pyenv's 2.7.x first, then ``python2.7`` on PATH."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(root) / "versions"
    if versions.is_dir():
        for found in sorted(versions.glob("2.7*/bin/python2.7"), reverse=True):
            if os.access(found, os.X_OK):
                return str(found)
    return shutil.which("python2.7")


def ensure_installed() -> tuple[str, Path]:
    """Install supervisor 3.3.1 for Python 2.7 once; return (python2.7, target folder)."""
    python = python27()
    if python is None:
        raise Supervisor3Unavailable("no Python 2.7 on this machine (pyenv install 2.7.18 provides one)")
    marker = TARGET / ".installed"
    if not marker.exists():
        TARGET.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-script-location",
             "--target", str(TARGET), f"supervisor=={VERSION}"],
            capture_output=True, text=True, timeout=300,
        )
        if done.returncode != 0:
            raise Supervisor3Unavailable(f"pip could not install supervisor=={VERSION} for {python}: "
                                         f"{done.stderr.strip()[-400:]}")
        marker.write_text(python + "\n")
    return python, TARGET


def command(module: str) -> list[str]:
    """argv prefix running supervisor 3.3.1's ``supervisord`` or ``supervisorctl`` (module name)."""
    python, target = ensure_installed()
    return [python, "-c", _BOOT.format(target=str(target), module=module, name=module)]


def supervisord_command() -> list[str]:
    return command("supervisord")


def supervisorctl_command() -> list[str]:
    return command("supervisorctl")
