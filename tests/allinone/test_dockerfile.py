"""Dockerfile.test cannot be built here (no Docker engine): check what it promises, statically."""
from __future__ import annotations

import re

from tests.allinone.simulation import REPO
from tests.helpers import dockerfile_instructions


def _instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions(REPO / "Dockerfile.test")


def test_dockerfile_builds_on_python_311_with_containerd_and_runs_make_test() -> None:
    """Python 3.11 base, containerd and make from apt, the project installed, `make test` by default."""
    steps = _instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " && ".join(rest for word, rest in steps if word == "RUN")
    assert re.search(r"apt-get install [^&]*\bcontainerd\b", runs)
    assert re.search(r"apt-get install [^&]*\bmake\b", runs)
    assert "make install" in runs
    assert ("COPY", ". .") in steps
    assert steps[-1] == ("CMD", '["make", "test"]')
    # The Makefile's default interpreter must exist in the base image (python:3.11 ships python3.11).
    assert re.search(r"^PYTHON \?= python3\.11$", (REPO / "Makefile").read_text(), re.M)


def test_dockerignore_keeps_the_host_venv_out_of_the_image() -> None:
    """A host .venv in the build context would be stale inside the image: it is ignored."""
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert ".venv" in ignored
