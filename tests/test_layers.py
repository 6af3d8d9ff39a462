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


def test_every_package_is_installed() -> None:
    """A package missing from setup.cfg works in the editable venv and is absent from the bundle."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(PACKAGE.parent / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found - {"watchdog.conf"} <= listed, f"not in setup.cfg [options] packages: {found - listed}"


def test_watchers_stand_apart() -> None:
    """A watcher knows the board (``watchers.base``), never another watcher, the dispatcher or the
    publication; nothing below the watchers (diagnosis, sources, sinks) knows them."""
    for module, imps in modules().items():
        watched = {i for i in imps if i.startswith("watchdog.watchers")}
        if module.startswith("watchdog/watchers/"):
            own = "watchdog." + module[: -len(".py")].replace("/", ".").split(".", 1)[1]
            others = watched - {"watchdog.watchers.base", own}
            assert not others, f"{module} imports other watchers: {others}"
            assert not {i for i in imps if i in ("watchdog.app", "watchdog.publication", "watchdog.cli")}, module
        elif module.split("/")[1] in ("diagnosis", "sources", "sinks"):
            assert not watched, f"{module} imports {watched}"


def test_the_dispatcher_is_short() -> None:
    """``Monitor`` dispatches; the state and the checks live in the watchers."""
    tree = ast.parse((PACKAGE / "app.py").read_text())
    (monitor,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Monitor"]
    assert monitor.end_lineno is not None
    state = {t.attr for n in ast.walk(monitor) if isinstance(n, ast.Assign) for t in n.targets
             if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    assert state <= {"board", "processes_watcher", "init_watcher", "region_watcher", "host_watcher",
                     "console_watcher", "boot", "watchers", "publication", "_on_state", "_on_log", "_on_tick",
                     "_refresh"}, f"Monitor keeps state of its own: {state}"
