"""What each real supervisord generation sends: ``len`` in bytes under 3.3.1 (Python 2.7), characters under 4."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.framing import DOTS, init_line
from tests.helpers import reaped, wait_for
from tests.integration.supervisor_env import GENERATIONS, Program, Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDER = Path(__file__).with_name("recorder.py")
LINE = init_line("INFO", f"Containerd is starting, please wait {DOTS} 镜像")
"""What the program prints: ANSI colour, a run of ``·`` (2 bytes each), Chinese (3 bytes each)."""


def _recorded(path: Path) -> list[dict[str, str]]:
    try:
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: f"supervisor{g}")
def test_header_len_counts_bytes_under_3_and_characters_under_4(tmp_path: Path, generation: int) -> None:
    """A known non-ASCII PROCESS_LOG payload, as really framed by each real supervisord."""
    printer = tmp_path / "printer.py"
    printer.write_text(f"import sys, time\nsys.stdout.buffer.write({LINE!r})\nsys.stdout.flush()\ntime.sleep(60)\n")
    record = tmp_path / "recorded.jsonl"
    with reaped() as reaper:
        sup = Supervisor(tmp_path, reaper, [
            Program("printer", f"{sys.executable} {printer}", str(tmp_path / "logs" / "printer.log"),
                    {"stdout_events_enabled": "true", "autorestart": "false", "startsecs": "0", "priority": "50"}),
        ], {}, generation, extra_sections=(
            f"\n[eventlistener:recorder]\ncommand={sys.executable} {RECORDER} {record}\n"
            "events=PROCESS_LOG\nbuffer_size=10\nstdout_logfile=NONE\nstderr_logfile=NONE\npriority=1\n"))
        try:
            sup.start()
            logs = wait_for(lambda: [r for r in _recorded(record) if "PROCESS_LOG_STDOUT" in r["header"]
                                     and b"processname:printer" in bytes.fromhex(r["payload"])], 30,
                            what="the printer's PROCESS_LOG event")
        finally:
            sup.stop()
    header = dict(t.split(":", 1) for t in logs[0]["header"].split())
    payload = bytes.fromhex(logs[0]["payload"])
    assert payload.endswith(LINE)  # nothing re-encoded: the program's bytes
    n_bytes, n_chars = len(payload), len(payload.decode("utf-8"))
    assert n_bytes > n_chars
    assert int(header["len"]) == (n_bytes if generation == 3 else n_chars)
