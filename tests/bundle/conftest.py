"""Fixtures of the bundle tests: the bundle built once per session, an empty root per test."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bundle.building import Bundle, BundleUnavailable, build_bundle
from tests.bundle.emptyroot import VARIANTS, EmptyRoot, cannot_mount, empty_root, is_root


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    if not is_root():
        pytest.skip("the bundle tests chroot into an empty root and mount /proc: they need root")
    why = cannot_mount(tmp_path_factory.mktemp("probe"))
    if why:
        pytest.skip(why)
    try:
        return build_bundle()
    except BundleUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(params=VARIANTS)
def root(request: pytest.FixtureRequest, bundle: Bundle, tmp_path: Path) -> Iterator[EmptyRoot]:
    with empty_root(tmp_path, bundle, request.param) as er:
        yield er


@pytest.fixture
def onefile_root(bundle: Bundle, tmp_path: Path) -> Iterator[EmptyRoot]:
    with empty_root(tmp_path, bundle, "onefile") as er:
        yield er
