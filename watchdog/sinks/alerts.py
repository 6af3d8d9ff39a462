"""Alerts: log events on stderr, which supervisord passes into `docker logs`.

A raised problem and a resolved one are log events (``problem_raised``, ``problem_resolved``)
with the same fields in both formats. ``alert_format = "text"`` (the default) renders them for
a person in the init script's style (see ``alert_text``) and keeps the watchdog's bookkeeping
quiet below warning; ``"json"`` writes every event as one JSON line, as log shippers want.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable, Mapping, MutableMapping, Sequence, TextIO

import structlog

from watchdog.diagnosis.problems import Change
from watchdog.sinks import alert_text

FORMATS = ("text", "json")
COLOUR_CHOICES = ("auto", "always", "never")


def colour_wanted(choice: str, stream: TextIO, env: Mapping[str, str]) -> bool:
    """``always``/``never`` as said; ``auto``: only on a terminal, and not when ``NO_COLOR`` is set."""
    if choice == "always":
        return True
    if choice == "never" or env.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class TextRenderer:
    """structlog's last processor in text format: one event → the lines a person reads."""

    def __init__(self, languages: Sequence[str], colour: bool, clock: Callable[[], float] = time.time) -> None:
        self.languages = tuple(languages)
        self.colour = colour
        self.clock = clock

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        level = str(event.get("level", method))
        now = self.clock()
        try:
            return "\n".join(alert_text.render(event, now, self.languages, self.colour, level))
        except Exception as e:  # a line that cannot be rendered must not cost the event
            return f"{alert_text.stamp(now)} ERROR: {alert_text.TAG} {event.get('event')!s} (not rendered: {e!r})"


def _quiet_bookkeeping(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not alert_text.shown(event, str(event.get("level", method))):
        raise structlog.DropEvent
    return event


def configure(
    stream: TextIO | None = None,
    json: bool | None = None,
    *,
    alert_format: str | None = None,
    colour: str = "auto",
    languages: Sequence[str] = ("zh", "en"),
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Send every log event to ``stream`` (default stderr); never to stdout.

    ``json=True`` (or ``alert_format="json"``) writes JSON lines; otherwise text for people.
    """
    out = stream or sys.stderr
    fmt = "json" if json else (alert_format or "text")
    processors: list[Any] = [structlog.processors.add_log_level]
    if fmt == "json":
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ]
    else:
        wanted = colour_wanted(colour, out, os.environ if env is None else env)
        processors += [_quiet_bookkeeping, structlog.processors.format_exc_info, TextRenderer(languages, wanted, clock)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def logger() -> Any:
    return structlog.get_logger("rainbond-watchdog")


def fields_of(change: Change, languages: Sequence[str]) -> dict[str, Any]:
    """The fields of a raised or resolved problem's event (the JSON line's keys)."""
    lang = languages[0] if languages else "en"
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
    else:
        fields["count"] = change.problem.count
    return fields


def emit(changes: list[Change], languages: tuple[str, ...], log: Any | None = None) -> None:
    """One event per raised or resolved problem."""
    log = log or logger()
    for change in changes:
        fields = fields_of(change, languages)
        if change.kind == "raised":
            level = {"error": log.error, "warning": log.warning}.get(fields["severity"], log.info)
            level("problem_raised", **fields)
        else:
            log.info("problem_resolved", **fields)


def ready(phases: Mapping[str, float | None], total: float | None, began_before_watchdog: bool,
          log: Any | None = None) -> None:
    """The boot in one line: how long each phase took (seconds; ``None`` when unknown)."""
    log = log or logger()
    rounded = {k: (round(v, 1) if v is not None else None) for k, v in phases.items()}
    log.info("rainbond_ready", total_seconds=round(total, 1) if total is not None else None, phases=rounded,
             began_before_watchdog=began_before_watchdog)
