"""The image layouts (pure): which program is the runtime and which logs k3s's failures are read from."""
from __future__ import annotations

import dataclasses

import pytest

from watchdog.config import ProgramSettings, Settings, settings_from_dict
from watchdog.diagnosis import layouts
from watchdog.model import ABSENT, UNKNOWN, ProcessView

EMBEDDED_LOG = "/app/data/k3s/agent/containerd/containerd.log"


@pytest.mark.parametrize(
    ("programs", "layout"),
    [
        (["init_rainbond", "docker", "k3s", "console", "cloudadaptor", "log"], "dockerd"),
        (["init_rainbond", "containerd", "k3s", "console", "cloudadaptor", "log"], "containerd"),
        (["init_rainbond", "k3s", "console", "cloudadaptor", "log"], "embedded"),
        (["docker", "containerd", "k3s"], "dockerd"),  # dockerd runs a containerd of its own
        ([], "embedded"),
    ],
)
def test_auto_picks_the_layout_from_the_programs_supervisord_has(programs: list[str], layout: str) -> None:
    assert layouts.detect(programs) == layout
    assert layouts.resolve("auto", programs) == layout


@pytest.mark.parametrize("configured", ["dockerd", "containerd", "embedded"])
def test_a_configured_layout_wins_over_the_programs(configured: str) -> None:
    assert layouts.resolve(configured, ["docker", "k3s"]) == configured
    assert layouts.resolve(configured, None) == configured


def test_auto_without_word_from_supervisord_assumes_the_containerd_layout() -> None:
    assert layouts.resolve("auto", None) == "containerd"


def test_containerd_layout_keeps_the_programs_and_reads_containerd_log_when_k3s_fails() -> None:
    base = Settings()
    s = layouts.settings_for(base, "containerd")
    assert s.programs["containerd"] == base.programs["containerd"]
    assert s.programs["k3s"].logs == ("k3s.log", "containerd.log")
    assert s.programs["console"] == base.programs["console"]
    assert dataclasses.replace(s, programs=base.programs) == base


def test_dockerd_layout_watches_the_docker_program_and_dind_log() -> None:
    s = layouts.settings_for(Settings(), "dockerd")
    runtime = s.programs["containerd"]
    assert (runtime.program, runtime.logs) == ("docker", ("dind.log",))
    assert runtime.deadline_seconds == Settings().programs["containerd"].deadline_seconds
    assert s.programs["k3s"].logs == ("k3s.log", "dind.log")


def test_dockerd_layout_keeps_an_operators_own_runtime_program() -> None:
    base = settings_from_dict({"programs": {"containerd": {"program": "dockerd-custom", "logs": ["my.log"]}}})
    assert layouts.settings_for(base, "dockerd").programs["containerd"] == base.programs["containerd"]
    assert layouts.settings_for(base, "dockerd").programs["k3s"].logs == ("k3s.log", "my.log")
    renamed_logs = settings_from_dict({"programs": {"containerd": {"logs": ["docker.log"]}}})
    runtime = layouts.settings_for(renamed_logs, "dockerd").programs["containerd"]
    assert (runtime.program, runtime.logs) == ("docker", ("docker.log",))


def test_embedded_layout_has_no_runtime_program_and_reads_the_embedded_containerd_log() -> None:
    s = layouts.settings_for(Settings(), "embedded")
    assert s.programs["containerd"].program == "" and s.programs["containerd"].logs == ()
    assert s.programs["k3s"].logs == ("k3s.log", EMBEDDED_LOG)
    assert s.programs["console"] == Settings().programs["console"]


def test_embedded_containerd_log_follows_the_data_dir() -> None:
    base = settings_from_dict({"host": {"data_dir": "/srv/rainbond"}})
    assert layouts.settings_for(base, "embedded").programs["k3s"].logs[-1] == \
        "/srv/rainbond/k3s/agent/containerd/containerd.log"


def test_embedded_log_is_not_added_twice() -> None:
    programs = dict(Settings().programs)
    programs["k3s"] = ProgramSettings("k3s", ("k3s.log", EMBEDDED_LOG))
    base = dataclasses.replace(Settings(), programs=programs)
    assert layouts.settings_for(base, "embedded").programs["k3s"].logs == ("k3s.log", EMBEDDED_LOG)


def test_embedded_runtime_is_absent_without_asking_supervisord() -> None:
    views = {"containerd": ProcessView(), "k3s": ProcessView("RUNNING")}
    out = layouts.views_for(views, "embedded")
    assert out["containerd"].state == ABSENT and out["k3s"] == views["k3s"]


def test_leaving_embedded_makes_the_runtime_unknown_until_supervisord_says() -> None:
    views = {"containerd": ProcessView(ABSENT)}
    assert layouts.views_for(views, "dockerd")["containerd"].state == UNKNOWN
    running = {"containerd": ProcessView("RUNNING", since=5.0)}
    assert layouts.views_for(running, "containerd") == running


def test_runtime_logs_of_each_layout() -> None:
    base = settings_from_dict({"log_dir": "/l", "host": {"data_dir": "/d"}})
    assert layouts.runtime_logs(base) == {"dockerd": "/l/dind.log", "containerd": "/l/containerd.log",
                                          "embedded": "/d/k3s/agent/containerd/containerd.log"}


@pytest.mark.parametrize(
    ("configured", "modified", "layout"),
    [
        ("auto", {}, "containerd"),
        ("auto", {"embedded": 5.0}, "embedded"),
        ("auto", {"dockerd": 5.0}, "dockerd"),
        ("auto", {"containerd": 9.0, "embedded": 10.0}, "embedded"),  # upgraded from v5.13 to v5.14
        ("auto", {"containerd": 10.0, "embedded": 9.0}, "containerd"),
        ("dockerd", {"embedded": 10.0}, "dockerd"),
    ],
)
def test_without_supervisord_the_newest_runtime_log_tells_the_layout(
    configured: str, modified: dict[str, float], layout: str
) -> None:
    assert layouts.guess(configured, modified) == layout


def test_a_runtime_log_k3s_already_reads_is_not_added_again() -> None:
    base = settings_from_dict({"programs": {"k3s": {"logs": ["k3s.log", "containerd.log"]}}})
    assert layouts.settings_for(base, "containerd").programs["k3s"].logs == ("k3s.log", "containerd.log")
