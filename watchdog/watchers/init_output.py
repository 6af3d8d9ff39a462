"""The image's init program's output: phase lines and ``nerdctl load`` errors (scope ``init``).

Only output of programs that are not watched components is read (the init program's, in the
image: its stdout has ``stdout_events_enabled``). Image-load problems end when k3s begins, since
k3s starts only after the images are loaded.
"""
from __future__ import annotations

from watchdog.diagnosis import phases
from watchdog.diagnosis.problems import Change
from watchdog.diagnosis.rules import evidence_for
from watchdog.watchers.base import Watcher

INIT_SCOPE = "init"


class InitOutputWatcher(Watcher):
    name = "init-output"

    def on_log(self, program: str, lines: list[str], now: float) -> list[Change]:
        b = self.board
        if program in b.component_of or not lines:
            return []
        keep = b.init_lines.maxlen
        fresh = lines if keep is None or len(lines) <= keep else lines[-keep:]
        b.init_lines.extend(fresh)
        matches = b.rules.match(fresh, "images")
        if not matches:
            return []  # an ordinary line: kept for evidence, nothing copied
        buffered = list(b.init_lines)
        offset = len(buffered) - len(fresh)
        findings = [
            b.rules.finding(
                m.rule.id,
                program,
                evidence=evidence_for(buffered, [offset + i for i in m.line_numbers]),
                source=f"supervisord:{program}",
                scope=INIT_SCOPE,
                details={"program": program},
            )
            for m in matches
        ]
        return b.add(findings, now)

    def refresh(self, now: float) -> list[Change]:
        b = self.board
        if INIT_SCOPE in b.book.scopes and phases.begun(b.processes.get("k3s")):
            # k3s starts only after the images are loaded: image-load problems are over.
            return b.resolve_scope(INIT_SCOPE, now)
        return []
