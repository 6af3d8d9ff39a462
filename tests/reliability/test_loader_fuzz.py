"""Config and rule loaders fuzzed: a ``ConfigError`` naming the file, never another exception.

Mutations start from the shipped files (so the fuzzer reaches deep keys) and replace one value
anywhere in the tree with something of the wrong shape; raw bytes exercise the TOML layer.
"""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from watchdog.config import ConfigError, load_settings, packaged_conf_dir, settings_from_dict
from watchdog.diagnosis.rules import load_rule_file, parse_rules

CONF = packaged_conf_dir()
SHIPPED_CONFIG = tomllib.loads((CONF / "watchdog.toml").read_text())
SHIPPED_RULES = tomllib.loads((CONF / "rules.toml").read_text())

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["", "(", "[a-", "*", "(?P<x", "\\", "zh", "en", "error", "k3s", "../../etc"]),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10,
)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(tree: dict[str, Any], path: tuple[Any, ...], value: Any, extra_key: str | None) -> dict[str, Any]:
    doc = copy.deepcopy(tree)
    if not path:
        return doc if extra_key is None else {**doc, extra_key: value}
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    if extra_key is not None and isinstance(node, dict):
        node[extra_key] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, tree: dict[str, Any]) -> dict[str, Any]:
    path = draw(st.sampled_from(_paths(tree)))
    extra = draw(st.one_of(st.none(), st.text(min_size=1, max_size=8)))
    return _mutate(tree, path, draw(_value), extra)


_FUZZ = hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(doc=mutated(SHIPPED_CONFIG))
def test_mutated_config_loads_or_raises_config_error(doc: dict[str, Any]) -> None:
    """Any value of any shape at any key: valid settings or a ConfigError naming the file."""
    try:
        settings_from_dict(doc, source="fuzz.toml")
    except ConfigError as e:
        assert str(e).startswith("fuzz.toml: ")


@_FUZZ
@given(doc=mutated(SHIPPED_RULES))
def test_mutated_rule_file_parses_or_raises_config_error(doc: dict[str, Any]) -> None:
    """Broken regexes, wrong types, unknown keys in rules: a ConfigError naming the file."""
    try:
        parse_rules(doc, "fuzz-rules.toml")
    except ConfigError as e:
        assert "fuzz-rules.toml" in str(e)


_toml_ish = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\xff\xfe[rule]\n", b"[[rule]]\nid = 1\n", b"status_file = [\n", b"a = 1\na = 2\n",
                     b"[host]\npaths = \"x\"\n", b"[[rule]]\npatterns = ['(']\n", b"\x00" * 10]),
)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_toml_ish)
def test_arbitrary_bytes_as_config_or_rule_file_give_config_error(raw: bytes, tmp_path: Path) -> None:
    """Invalid TOML, invalid UTF-8, NUL bytes: a ConfigError for both loaders, never a traceback."""
    path = tmp_path / "fuzz.toml"
    path.write_bytes(raw)
    for load in (load_settings, load_rule_file):
        try:
            load(path)
        except ConfigError as e:
            assert str(path) in str(e)


def test_unreadable_config_paths_give_config_error(tmp_path: Path) -> None:
    """A directory, a missing file: one sentence with the path."""
    for path in (tmp_path, tmp_path / "missing.toml"):
        for load in (load_settings, load_rule_file):
            try:
                load(path)
            except ConfigError as e:
                assert str(path) in str(e)
            else:  # pragma: no cover - the property under test
                raise AssertionError(f"{load.__name__}({path}) did not fail")
