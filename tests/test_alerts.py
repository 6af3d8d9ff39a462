"""What `docker logs` shows: problems as lines in the init script's style, or JSON lines for shippers."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.helpers import frame, state_frame
from tests.test_app import Clock, feed
from watchdog.app import Monitor
from watchdog.config import ConsoleSettings, Settings
from watchdog.diagnosis.problems import Change
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import Finding, HostSample, Problem, RegionView, Severity, Steps, Texts
from watchdog.sinks import alert_text, alerts

T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (ERROR|WARN|INFO): \[watchdog\] (.*)$")


def change(kind: str = "raised", severity: Severity = Severity.ERROR, count: int = 1) -> Change:
    f = Finding(
        "k3s.cgroupv2-unsupported", "k3s", severity, "k3s",
        Texts("K3s 无法进入 cgroup v2。", "K3s cannot enter cgroup v2."),
        Steps(("使用最新版本的镜像。", "或降级 Docker Desktop。"), ("Use the newest image.", "Or downgrade Docker Desktop.")),
        evidence=("level=fatal msg=cannot enter cgroupv2",), source="/app/logs/k3s.log",
    )
    return Change(kind, Problem(f, T0, T0, count=count))  # type: ignore[arg-type]


def lines_of(c: Change, languages: tuple[str, ...], colour: bool = False) -> list[str]:
    event = {"event": f"problem_{c.kind}", **alerts.fields_of(c, languages)}
    return alert_text.render(event, T0, languages, colour, tz=UTC)


def test_raised_problem_reads_like_the_init_script_in_chinese_first() -> None:
    """Summary (zh), the first step, the English summary, and the command that shows the rest."""
    lines = lines_of(change(), ("zh", "en"))
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert {m.group(1) for m in parsed if m} == {"2026-09-21 14:13:20"}
    assert {m.group(2) for m in parsed if m} == {"ERROR"}
    bodies = [m.group(3) for m in parsed if m]
    assert bodies[0] == "k3s.cgroupv2-unsupported (k3s): K3s 无法进入 cgroup v2。"
    assert bodies[1] == "  处理建议: 使用最新版本的镜像。"
    assert bodies[2] == "  en: K3s cannot enter cgroup v2."
    assert bodies[3] == "  查看详情: docker exec rainbond-allinone rainbond-watchdog status"
    assert len(lines) == 4 and "降级" not in "\n".join(lines)  # only the first step


def test_raised_problem_in_english_first_carries_the_chinese_summary() -> None:
    bodies = [LINE.match(line).group(3) for line in lines_of(change(), ("en", "zh"))]  # type: ignore[union-attr]
    assert bodies[0] == "k3s.cgroupv2-unsupported (k3s): K3s cannot enter cgroup v2."
    assert bodies[1] == "  What to do: Use the newest image."
    assert bodies[2] == "  zh: K3s 无法进入 cgroup v2。"
    assert bodies[3].startswith("  More: docker exec rainbond-allinone")


def test_one_language_has_no_translation_line() -> None:
    lines = lines_of(change(), ("en",))
    assert len(lines) == 3 and not any("无法" in line for line in lines)


@pytest.mark.parametrize(("severity", "word"), [(Severity.ERROR, "ERROR"), (Severity.WARNING, "WARN"),
                                                (Severity.INFO, "INFO")])
def test_severity_picks_the_init_scripts_level_word(severity: Severity, word: str) -> None:
    assert {LINE.match(x).group(2) for x in lines_of(change(severity=severity), ("zh", "en"))} == {word}  # type: ignore[union-attr]


@pytest.mark.parametrize(("severity", "code"), [(Severity.ERROR, "\033[0;31m"), (Severity.WARNING, "\033[33;1m"),
                                                (Severity.INFO, "\033[32;1m")])
def test_colour_wraps_each_whole_line_as_the_init_script_does(severity: Severity, code: str) -> None:
    coloured = lines_of(change(severity=severity), ("zh", "en"), colour=True)
    plain = lines_of(change(severity=severity), ("zh", "en"), colour=False)
    assert coloured == [f"{code}{line}\033[0m" for line in plain]
    assert not any("\033" in line for line in plain)


@pytest.mark.parametrize(("languages", "text"), [(("zh", "en"), "已解决 (共 4 次)"), (("en", "zh"), "resolved (seen 4 times)")])
def test_resolved_problem_is_one_info_line(languages: tuple[str, ...], text: str) -> None:
    (line,) = lines_of(change("resolved", count=4), languages)
    m = LINE.match(line)
    assert m and m.group(2) == "INFO"
    assert m.group(3) == f"k3s.cgroupv2-unsupported (k3s): {text}"


def test_boot_line_says_how_long_each_phase_took() -> None:
    event = {"event": "rainbond_ready", "total_seconds": 372.0,
             "phases": {"containerd": 4.0, "images": 185.0, "k3s": 41.0, "region": 122.0, "console": 20.0}}
    (en,) = alert_text.render(event, T0, ("en", "zh"), False, tz=UTC)
    assert en.endswith("INFO: [watchdog] Rainbond ready in 6m12s: containerd 4s, images 3m05s, k3s 41s, "
                       "region 2m02s, console 20s")
    (zh,) = alert_text.render(event, T0, ("zh", "en"), False, tz=UTC)
    assert "Rainbond 已就绪，用时 6m12s：containerd 4s，images 3m05s" in zh


def test_boot_line_with_an_unknown_start_says_so() -> None:
    event = {"event": "rainbond_ready", "total_seconds": 300, "began_before_watchdog": True,
             "phases": {"containerd": None, "images": 100}}
    (line,) = alert_text.render(event, T0, ("en",), False, tz=UTC)
    assert line.endswith("Rainbond ready in ≥5m00s: containerd ?, images 1m40s")


def test_span_is_compact() -> None:
    assert [alert_text.span(s) for s in (0, 4, 65, 185, 3600, 3725)] == ["0s", "4s", "1m05s", "3m05s", "1h00m", "1h02m"]
    assert [alert_text.span(s) for s in (float("inf"), float("nan"), -3)] == ["?", "?", "0s"]


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.floats(), st.integers(), st.text(max_size=5)),
                       max_size=6), st.one_of(st.none(), st.floats(), st.text(max_size=5)))
def test_any_boot_line_renders(phases: dict[str, object], total: object) -> None:
    (line,) = alert_text.render({"event": "rainbond_ready", "phases": phases, "total_seconds": total}, T0, ("en",),
                                False, tz=UTC)
    assert LINE.match(line) and "Rainbond ready in " in line


def test_date_is_the_init_scripts_format_in_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    import time
    time.tzset()
    try:
        assert alert_text.stamp(T0) == "2026-09-21 22:13:20"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# ----------------------------------------------------------------------------- configure: the stream


def test_text_format_shows_problems_and_warnings_but_not_bookkeeping() -> None:
    stream = io.StringIO()
    alerts.configure(stream, alert_format="text", colour="never", languages=("en", "zh"), clock=lambda: T0)
    log = alerts.logger()
    log.info("listener_started", version="1")
    log.info("region_api", api="ok")
    alerts.emit([change()], ("en", "zh"))
    log.warning("status_write_failed", path="/app/status/diagnosis.json", error="Read-only file system")
    alerts.emit([change("resolved", count=2)], ("en", "zh"))
    out = stream.getvalue().splitlines()
    assert all(LINE.match(line) for line in out), out
    assert not any("listener_started" in line or "region_api" in line for line in out)
    assert out[0].endswith("k3s.cgroupv2-unsupported (k3s): K3s cannot enter cgroup v2.")
    assert "WARN: [watchdog] status_write_failed path=/app/status/diagnosis.json error=Read-only file system" in out[4]
    assert out[5].endswith("resolved (seen 2 times)")
    assert not any(line.lstrip().startswith("{") for line in out)


def test_text_format_keeps_a_traceback_under_its_line() -> None:
    stream = io.StringIO()
    alerts.configure(stream, alert_format="text", colour="never", clock=lambda: T0)
    try:
        raise ValueError("boom")
    except ValueError:
        alerts.logger().exception("event_handling_failed", eventname="TICK_5")
    out = stream.getvalue().splitlines()
    assert "ERROR: [watchdog] event_handling_failed eventname=TICK_5" in out[0]
    assert any("ValueError: boom" in line for line in out[1:])


def test_json_format_keeps_every_event_with_todays_fields() -> None:
    stream = io.StringIO()
    alerts.configure(stream, alert_format="json")
    alerts.logger().info("listener_started", version="1")
    alerts.emit([change(), change("resolved", count=3)], ("zh", "en"))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["listener_started", "problem_raised", "problem_resolved"]
    raised, resolved = events[1], events[2]
    assert set(raised) == {"event", "level", "timestamp", "id", "subject", "severity", "component", "summary",
                           "remediation", "summary_en", "source"}
    assert (raised["level"], raised["summary"], raised["remediation"]) == ("error", "K3s 无法进入 cgroup v2。", "使用最新版本的镜像。")
    assert set(resolved) == {"event", "level", "timestamp", "id", "subject", "severity", "component", "summary", "count"}
    assert resolved["count"] == 3


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert alerts.colour_wanted("auto", tty, {}) is True
            assert alerts.colour_wanted("auto", tty, {"NO_COLOR": "1"}) is False
            assert alerts.colour_wanted("never", tty, {}) is False
        pipe = io.StringIO()
        assert alerts.colour_wanted("auto", pipe, {}) is False
        assert alerts.colour_wanted("always", pipe, {"NO_COLOR": "1"}) is True
    finally:
        os.close(master)
        os.close(slave)


def test_a_terminal_gets_coloured_lines_and_a_pipe_plain_ones() -> None:
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False, encoding="utf-8") as tty:
            alerts.configure(tty, languages=("en",), env={}, clock=lambda: T0)
            alerts.emit([change()], ("en",))
            tty.flush()
        got = os.read(master, 65536).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert got.startswith("\033[0;31m") and "\033[0m" in got
    pipe = io.StringIO()
    alerts.configure(pipe, languages=("en",), env={}, clock=lambda: T0)
    alerts.emit([change()], ("en",))
    assert "\033" not in pipe.getvalue() and "ERROR: [watchdog]" in pipe.getvalue()


# ----------------------------------------------------------------------------- the boot in one line


def test_boot_took_measures_each_phase_from_the_previous_one() -> None:
    from watchdog.diagnosis import timeline as boot

    # The console program is RUNNING at +360 (its timeline date); it answers, and ready is reached, at +372.
    after = {"containerd": T0 + 4, "images": T0 + 189, "k3s": T0 + 230, "region": T0 + 352, "console": T0 + 360,
             "ready": T0 + 372}
    before = {**after, "ready": None}
    took = boot.boot_took(before, after, T0, first_look=False)
    assert took is not None
    assert dict(took.phases) == {"containerd": 4, "images": 185, "k3s": 41, "region": 122, "console": 20}
    assert took.total == 372 and not took.began_before_watchdog
    assert boot.boot_took(after, after, T0, first_look=False) is None  # said once
    assert boot.boot_took(before, after, T0, first_look=True) is None  # not a boot it watched
    assert sum(v for v in took.phases.values() if v is not None) == took.total
    no_containerd = boot.boot_took(before, after, T0, first_look=False, skipped=frozenset({"containerd"}))
    assert no_containerd is not None and "containerd" not in no_containerd.phases
    assert no_containerd.phases["images"] == 189  # from the listener's start
    late = boot.boot_took(before, after, T0 + 100, first_look=False)
    assert late is not None and late.began_before_watchdog
    assert late.phases["containerd"] is None and late.phases["images"] == 185 and late.total == 368


def test_monitor_says_ready_once_with_the_phase_times(settings: Settings, rulebook: RuleBook) -> None:
    settings = dataclasses.replace(settings, console=ConsoleSettings(probe=False))
    clock = Clock(T0)
    mon = Monitor(settings, rulebook, clock=clock, host_sampler=HostSample)
    with capture_logs() as logs:
        feed(mon, state_frame("STARTING", "containerd", "STOPPED", 1))
        clock.t += 4
        feed(mon, state_frame("RUNNING", "containerd", "STARTING", 2))
        clock.t += 185
        feed(mon, frame("PROCESS_LOG_STDOUT", "processname:init groupname:init pid:9 channel:stdout\n"
                        "INFO: Load container images successfully\n", 3),
             state_frame("STARTING", "k3s", "STOPPED", 4))
        clock.t += 41
        feed(mon, state_frame("RUNNING", "k3s", "STARTING", 5))
        clock.t += 122
        mon.region = RegionView(api="ok", ready=True)
        feed(mon, state_frame("STARTING", "console", "STOPPED", 6))
        clock.t += 20
        feed(mon, state_frame("RUNNING", "console", "STARTING", 7))
        clock.t += 30
        feed(mon, state_frame("RUNNING", "console", "STARTING", 8))
    ready = [e for e in logs if e["event"] == "rainbond_ready"]
    assert len(ready) == 1, [e["event"] for e in logs]
    assert ready[0]["total_seconds"] == 372
    assert ready[0]["phases"] == {"containerd": 4, "images": 185, "k3s": 41, "region": 122, "console": 20}
    assert json.loads(Path(settings.status_file).read_text())["phase"] == "ready"


def test_a_storm_summary_and_an_escalation_are_one_line_each() -> None:
    ongoing = {"event": "problem_ongoing", "id": "process.flapping", "subject": "k3s", "severity": "warning",
               "count": 40, "new_since_last_line": 12}
    (line,) = alert_text.render(ongoing, T0, ("en",), False, "warning", tz=UTC)
    assert line.endswith("WARN: [watchdog] process.flapping (k3s): still happening: 40 times (12 since the last line)")
    worse = {"event": "problem_escalated", "id": "images.bind-mount-storage", "subject": "/app/data",
             "severity": "error", "reason": "image loading fails on a host-share data folder"}
    (line,) = alert_text.render(worse, T0, ("zh",), False, "error", tz=UTC)
    assert "ERROR: [watchdog] images.bind-mount-storage (/app/data): 加重为 error：image loading fails" in line


@given(st.dictionaries(st.text(max_size=12), st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=40),
                                                       st.lists(st.integers(), max_size=3)), max_size=8),
       st.sampled_from(["problem_raised", "problem_resolved", "rainbond_ready", "problem_ongoing", "other"]),
       st.sampled_from(["info", "warning", "error", "nonsense"]))
def test_any_event_renders_to_tagged_lines_without_raising(fields: dict[str, object], name: str, level: str) -> None:
    """Whatever an event carries, a person gets lines in the same shape (one per line, no raw newlines)."""
    lines = alert_text.render({**fields, "event": name}, T0, ("zh", "en"), False, level, tz=UTC)
    assert lines and all(LINE.match(line) for line in lines)


def test_a_line_that_cannot_be_rendered_still_says_which_event() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    stream = io.StringIO()
    alerts.configure(stream, colour="never", clock=lambda: T0)
    alerts.logger().warning("odd_event", value=Broken())
    (line,) = stream.getvalue().splitlines()
    assert "ERROR: [watchdog] odd_event (not rendered: RuntimeError('no text'))" in line
