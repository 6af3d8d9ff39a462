"""Security: secrets never leave as evidence or on stderr; the status file cannot be abused."""
from __future__ import annotations

import ast
import io
import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from tests.helpers import frame, state_frame
from tests.reliability.conftest import Captured
from watchdog.app import listen
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.sinks.status_file import write_atomic
from watchdog.sources.supervisor_events import EventChannel

PACKAGE = Path(__file__).resolve().parents[2] / "watchdog"
SECRETS = ["s3cr3tK3sTok3n", "agentT0kenXYZ", "eyJhbGciOiJSUzI1NiJ9.SECRETpayload", "hunter2pw",
           "0123456789abcdef0123456789abcdef", "dbPassw0rdValue", "AKIASECRETKEY123"]
LEAKY_LINES = [
    "time=\"2026-11-30T01:00:00Z\" level=info msg=\"env\" K3S_TOKEN=s3cr3tK3sTok3n",
    "level=info msg=\"Running kubelet --agent-token agentT0kenXYZ --node-name allinone\"",
    "request failed: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.SECRETpayload",
    "level=error msg=\"datastore mysql://root:hunter2pw@10.0.0.2:3306/k3s unreachable\"",
    "level=info msg=\"node token K100123456789abcdef0123456789abcdef::server:0123456789abcdef0123456789abcdef\"",
    "config: {\"db_password\": \"dbPassw0rdValue\", \"access_key\": \"AKIASECRETKEY123\"}",
]


def test_secrets_in_logs_reach_neither_evidence_nor_stderr(
    settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """A failing k3s and a failing image load whose logs are full of credentials."""
    logs = Path(settings.log_dir)
    (logs / "k3s.log").write_text("\n".join([*LEAKY_LINES, "listen tcp :6443: bind: address already in use"]) + "\n")
    init = "processname:init groupname:init pid:1 channel:stdout\n" + "\n".join(
        [*LEAKY_LINES, "nerdctl load: write /var/lib/containerd/x: no space left on device"])
    stream = (frame("PROCESS_LOG_STDOUT", init, 1) + state_frame("BACKOFF", "k3s", serial=2)
              + state_frame("FATAL", "k3s", from_state="BACKOFF", serial=3)
              # A desynchronised stream: a log line read as a header must not be echoed verbatim.
              + LEAKY_LINES[0] + "\n" + LEAKY_LINES[5] + "\n")
    out = io.StringIO()
    assert listen(settings, rulebook, EventChannel(io.StringIO(stream), out), env={}) == 0
    status = Path(settings.status_file).read_text()
    doc = json.loads(status)
    evidence = [e for p in doc["problems"] + doc["resolved"] for e in p["evidence"]]
    assert evidence, "the failures were diagnosed with evidence"
    assert any("***" in e for e in evidence), "the leaky lines were quoted, redacted"
    for secret in SECRETS:
        assert secret not in status, secret
        assert secret not in stderr_log.text, secret
        assert secret not in out.getvalue()


def test_status_file_is_0644_whatever_the_umask_and_previous_mode(tmp_path: Path) -> None:
    path = tmp_path / "status" / "diagnosis.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o600)
    old = os.umask(0o077)
    try:
        write_atomic(str(path), "{\"schema\": 1}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == "{\"schema\": 1}\n"


def _next_temp_names(count: int) -> list[str]:
    """The names ``tempfile.mkstemp`` will try next (CPython's shared name sequence), without using them."""
    seq = tempfile._get_candidate_names()  # type: ignore[attr-defined]
    rng = seq.rng
    state = rng.getstate()
    names = [next(seq) for _ in range(count)]
    rng.setstate(state)
    return names


@pytest.mark.parametrize("victim_exists", [True, False])
def test_planted_symlinks_cannot_redirect_the_temporary_or_the_status_file(tmp_path: Path, victim_exists: bool) -> None:
    """Symlinks at the exact temporary names the writer will try, and at the status path itself."""
    folder = tmp_path / "status"
    folder.mkdir()
    victim = tmp_path / "victim"
    if victim_exists:
        victim.write_text("precious\n")
    planted = [folder / f".diagnosis.{name}.tmp" for name in _next_temp_names(5)]
    for link in planted:
        link.symlink_to(victim)
    status = folder / "diagnosis.json"
    status.symlink_to(victim)

    write_atomic(str(status), "{\"schema\": 1}\n")

    if victim_exists:
        assert victim.read_text() == "precious\n"
    else:
        assert not victim.exists()
    assert not status.is_symlink() and status.read_text() == "{\"schema\": 1}\n"
    assert all(link.is_symlink() for link in planted)  # the planted names were skipped, not followed


def _python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_shell_is_ever_involved() -> None:
    """No shell=True, os.system, os.popen, and no subprocess call given a single command string."""
    offenders: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                    and node.attr in ("system", "popen", "spawnlp", "execlp"):
                offenders.append(f"{path}:{node.lineno}: os.{node.attr}")
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        offenders.append(f"{path}:{node.lineno}: shell=")
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("run", "Popen", "call", "check_call", "check_output") and node.args and isinstance(
                        node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    offenders.append(f"{path}:{node.lineno}: {name}() with a command string")
    assert not offenders, offenders
    text = "\n".join(p.read_text() for p in _python_files())
    for needle in ("shell=True", "os.system(", "os.popen("):
        assert needle not in text
