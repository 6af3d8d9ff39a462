"""Alerts: structured lines on stderr, which supervisord passes into `docker logs`.

One line when a problem is raised, one when it is resolved, none in between. JSON lines when
stderr is not a TTY, structlog's console renderer when it is.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from watchdog.diagnosis.problems import Change


def configure(stream: TextIO | None = None, json: bool | None = None) -> None:
    """Send every log event to ``stream`` (default stderr); never to stdout."""
    out = stream or sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def logger() -> Any:
    return structlog.get_logger("rainbond-watchdog")


def emit(changes: list[Change], languages: tuple[str, ...], log: Any | None = None) -> None:
    """One structured line per raised or resolved problem."""
    log = log or logger()
    lang = languages[0] if languages else "en"
    for change in changes:
        f = change.problem.finding
        fields: dict[str, Any] = {
            "id": f.id,
            "subject": f.subject,
            "severity": f.severity.value,
            "component": f.component,
            "summary": f.summary.zh if lang == "zh" else f.summary.en,
        }
        if change.kind == "raised":
            fields["remediation"] = f.remediation.first(lang)
            if len(languages) > 1:
                other = languages[1]
                fields[f"summary_{other}"] = f.summary.zh if other == "zh" else f.summary.en
            fields["source"] = f.source
            level = {"error": log.error, "warning": log.warning}.get(f.severity.value, log.info)
            level("problem_raised", **fields)
        else:
            fields["count"] = change.problem.count
            log.info("problem_resolved", **fields)
