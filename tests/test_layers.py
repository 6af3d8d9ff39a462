"""The shape of the code: layers and the one-importer rule, checked by walking imports with ast."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "watchdog"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE.parent)): imports_of(p) for p in PACKAGE.rglob("*.py")}


def importers_of(prefix: str) -> set[str]:
    return {m for m, imps in modules().items() if any(i == prefix or i.startswith(prefix + ".") for i in imps)}


def test_each_third_party_io_library_has_exactly_one_importer() -> None:
    assert importers_of("kubernetes") <= {"watchdog/sources/kube.py"}
    assert importers_of("psutil") <= {"watchdog/sources/host.py"}
    assert importers_of("structlog") == {"watchdog/sinks/alerts.py"}
    assert importers_of("xmlrpc") == {"watchdog/sources/supervisor_rpc.py"}
    assert importers_of("hyperscan") == {"watchdog/diagnosis/literals.py"}


def test_diagnosis_is_pure() -> None:
    """No I/O library, no sources, no sinks and no clock in the diagnosis layer."""
    forbidden = ("watchdog.sources", "watchdog.sinks", "watchdog.app", "time", "socket", "subprocess",
                 "http", "urllib", "kubernetes", "psutil", "structlog", "threading")
    for module, imps in modules().items():
        if module.startswith("watchdog/diagnosis/"):
            bad = {i for i in imps if any(i == f or i.startswith(f + ".") for f in forbidden)}
            assert not bad, f"{module} imports {bad}"


def test_only_app_knows_all_three_layers() -> None:
    layers = ("watchdog.sources", "watchdog.diagnosis", "watchdog.sinks")
    for module, imps in modules().items():
        known = {layer for layer in layers if any(i == layer or i.startswith(layer + ".") for i in imps)}
        if len(known) == 3:
            assert module == "watchdog/app.py", module


def test_only_the_event_channel_touches_stdin_and_stdout() -> None:
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE.parent))
        text = path.read_text()
        if rel in {"watchdog/sources/supervisor_events.py", "watchdog/cli.py"}:
            continue
        for needle in ("sys.stdout", "sys.stdin", "print("):
            assert needle not in text, f"{rel} uses {needle}"


def test_check_imports_nothing_heavy() -> None:
    """``check`` is Docker's HEALTHCHECK (every 30 s): it must not load the listener, the rules
    engine, structlog or the Kubernetes client (bench/bundle.py shows its CPU)."""
    import subprocess
    import sys

    probe = (
        "import sys, watchdog.cli\n"
        "print(' '.join(m for m in ('watchdog.app', 'watchdog.diagnosis.rules', 'structlog', 'kubernetes', 'psutil')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == [], f"importing the CLI loads: {done.stdout.strip()}"
