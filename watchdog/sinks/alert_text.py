"""Alerts for people: a log event becomes lines in the image's own voice (pure).

The image's init script (``entrypoint-dind.sh``) prints every line as
``$(date "+%Y-%m-%d %H:%M:%S") INFO|WARN|ERROR: ...``, the whole line wrapped in a colour
(INFO ``\\033[32;1m`` green, WARN ``\\033[33;1m`` yellow, ERROR ``\\033[0;31m`` red, then
``\\033[0m``). The watchdog's lines in ``docker logs`` follow it, tagged ``[watchdog]``.

Pure: an event (the same fields as the JSON line), ``now``, the languages and a colour flag in;
lines out. Which events are shown at all is decided by ``shown``.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, tzinfo
from typing import Any, Mapping, Sequence

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
"""As the init script's ``date "+%Y-%m-%d %H:%M:%S"``."""
TAG = "[watchdog]"
STATUS_COMMAND = "docker exec rainbond-allinone rainbond-watchdog status"
"""The command that shows the rest (the container name of the documented ``docker run``)."""

COLOURS = {"ERROR": "\033[0;31m", "WARN": "\033[33;1m", "INFO": "\033[32;1m"}
RESET = "\033[0m"

ALWAYS_SHOWN = frozenset({"problem_raised", "problem_resolved", "rainbond_ready"})
"""Events a person always sees; the watchdog's own bookkeeping shows only at warning and above."""
_LEVEL_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4, "exception": 3}
_SEVERITY_LEVEL = {"error": "ERROR", "warning": "WARN", "info": "INFO"}
_METHOD_LEVEL = {"critical": "ERROR", "exception": "ERROR", "error": "ERROR", "warning": "WARN"}
_BOOKKEEPING_SKIPPED = frozenset({"event", "level", "timestamp", "exception", "log_level"})

_LABELS = {
    "zh": {"do": "处理建议", "more": "查看详情", "resolved": "已解决", "times": "共 {n} 次",
           "ready": "Rainbond 已就绪，用时 {total}：{phases}", "ready_sep": "，",
           "ongoing": "仍在发生：共 {n} 次（上一行之后 {new} 次）", "worse": "加重为 {severity}：{reason}"},
    "en": {"do": "What to do", "more": "More", "resolved": "resolved", "times": "seen {n} times",
           "ready": "Rainbond ready in {total}: {phases}", "ready_sep": ", ",
           "ongoing": "still happening: {n} times ({new} since the last line)", "worse": "now {severity}: {reason}"},
}


def shown(event: Mapping[str, Any], level: str) -> bool:
    """Whether a person sees the event: problems and the boot line always, bookkeeping from warning up."""
    if event.get("event") in ALWAYS_SHOWN:
        return True
    return _LEVEL_RANK.get(level, 1) >= _LEVEL_RANK["warning"]


def stamp(now: float, tz: tzinfo | None = None) -> str:
    """``now`` as the init script's ``date`` prints it (the container's local time unless ``tz``)."""
    if tz is None:
        return time.strftime(DATE_FORMAT, time.localtime(now))
    return datetime.fromtimestamp(now, tz).strftime(DATE_FORMAT)


def span(seconds: float) -> str:
    """A compact duration: ``4s``, ``3m05s``, ``1h02m``; ``?`` for what is not a number of seconds."""
    if not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def render(
    event: Mapping[str, Any],
    now: float,
    languages: Sequence[str],
    colour: bool,
    level: str = "info",
    tz: tzinfo | None = None,
) -> list[str]:
    """The lines a person reads for one event (empty when it has nothing to say)."""
    lang = languages[0] if languages and languages[0] in _LABELS else "en"
    name = str(event.get("event", ""))
    if name == "problem_raised":
        word, body = _raised(event, lang)
    elif name == "problem_resolved":
        word, body = "INFO", [_resolved(event, lang)]
    elif name == "rainbond_ready":
        word, body = "INFO", [_ready(event, lang)]
    elif name == "problem_ongoing":
        word, body = "WARN", [_about(event) + _LABELS[lang]["ongoing"].format(
            n=event.get("count", "?"), new=event.get("new_since_last_line", "?"))]
    elif name == "problem_escalated":
        word, body = "ERROR", [_about(event) + _LABELS[lang]["worse"].format(
            severity=event.get("severity", "?"), reason=event.get("reason", ""))]
    else:
        word, body = _METHOD_LEVEL.get(level, "INFO"), _bookkeeping(event)
    head = f"{stamp(now, tz)} {word}: {TAG} "
    lines = [head + body[0]] + [head + "  " + b for b in body[1:]]
    if colour:
        lines = [f"{COLOURS[word]}{line}{RESET}" for line in lines]
    return lines


def _about(event: Mapping[str, Any]) -> str:
    return f"{_one_line(event.get('id', '?'))} ({_one_line(event.get('subject', '?'))}): "


def _raised(event: Mapping[str, Any], lang: str) -> tuple[str, list[str]]:
    labels = _LABELS[lang]
    word = _SEVERITY_LEVEL.get(str(event.get("severity")), "INFO")
    body = [_about(event) + _one_line(event.get("summary", ""))]
    step = _one_line(event.get("remediation", ""))
    if step:
        body.append(f"{labels['do']}: {step}")
    for key, value in sorted(event.items()):
        if key.startswith("summary_") and value:
            body.append(f"{_one_line(key[len('summary_'):])}: {_one_line(value)}")
    body.append(f"{labels['more']}: {STATUS_COMMAND}")
    return word, body


def _resolved(event: Mapping[str, Any], lang: str) -> str:
    labels = _LABELS[lang]
    count = event.get("count")
    times = f" ({labels['times'].format(n=count)})" if isinstance(count, int) else ""
    return _about(event) + labels["resolved"] + times


def _ready(event: Mapping[str, Any], lang: str) -> str:
    labels = _LABELS[lang]
    total = event.get("total_seconds")
    phases = event.get("phases")
    parts = []
    if isinstance(phases, Mapping):
        for phase, seconds in phases.items():
            parts.append(f"{_one_line(phase)} {span(seconds) if isinstance(seconds, (int, float)) else '?'}")
    total_text = span(total) if isinstance(total, (int, float)) else "?"
    if event.get("began_before_watchdog"):
        total_text = "≥" + total_text
    return labels["ready"].format(total=total_text, phases=labels["ready_sep"].join(parts))


def _bookkeeping(event: Mapping[str, Any]) -> list[str]:
    """The watchdog's own line: its name and key=value pairs, a traceback indented after it."""
    pairs = " ".join(f"{_one_line(k)}={_one_line(v)}" for k, v in event.items() if k not in _BOOKKEEPING_SKIPPED)
    body = [f"{_one_line(event.get('event', '?'))} {pairs}".rstrip()]
    exc = event.get("exception")
    if isinstance(exc, str) and exc:
        body.extend(exc.rstrip("\n").splitlines())
    return body


def _one_line(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""
