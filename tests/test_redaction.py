"""Secrets never reach evidence or alerts: tokens, passwords, bearer headers, credentials in URLs."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from watchdog.diagnosis.problems import Change
from watchdog.diagnosis.redaction import MASK, redact
from watchdog.diagnosis.rules import RuleBook, load_rule_file, load_rule_files
from watchdog.model import Problem
from watchdog.sinks import alerts

SECRET = "s3cr3tV4lue"

LEAKY = [
    f"k3s server --token {SECRET} --disable traefik",
    f"k3s server --token={SECRET}",
    f"k3s agent -s https://172.17.0.2:6443 -t {SECRET}",
    f"K3S_TOKEN={SECRET} k3s server",
    f'env: K3S_AGENT_TOKEN="{SECRET}"',
    f"Authorization: Bearer {SECRET}",
    f"curl -H 'Authorization: Basic {SECRET}' https://127.0.0.1:6443/version",
    f"dial mysql://root:{SECRET}@127.0.0.1:3306/console failed",
    f"datastore-endpoint=postgres://kine:{SECRET}@db:5432/kine",
    f"MYSQL_PASSWORD={SECRET}",
    f"connect(host=127.0.0.1, user=root, password={SECRET})",
    f'{{"password": "{SECRET}", "user": "admin"}}',
    f"token: K10{'ab' * 16}::server:{SECRET}",
    f"service account token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.{SECRET}abcdefgh",
]


@pytest.mark.parametrize("line", LEAKY)
def test_secret_is_masked(line: str) -> None:
    out = redact(line)
    assert SECRET not in out
    assert MASK in out


@pytest.mark.parametrize(
    "line",
    [
        'time="2026-11-30T01:00:00Z" level=fatal msg="listen tcp :6443: bind: address already in use"',
        """django.db.utils.OperationalError: (1045, "Access denied for user 'root'@'127.0.0.1' (using password: YES)")""",
        "Error: failed to extract /usr/lib/libbz2.so.1.0.8: no space left on device",
    ],
)
def test_lines_without_secrets_are_unchanged(line: str) -> None:
    assert redact(line) == line


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> RuleBook:
    conf = Path(__file__).resolve().parents[1] / "conf"
    extra = tmp_path_factory.mktemp("rules") / "leak.toml"
    extra.write_text(
        "[[problem]]\n"
        'id = "k3s.leak-test"\ncomponent = "k3s"\nseverity = "error"\n'
        'summary.zh = "k3s 命令：{cmd}"\nsummary.en = "k3s command: {cmd}"\n'
        'remediation.zh = ["重试：`{cmd}`"]\nremediation.en = ["Retry: `{cmd}`"]\n'
    )
    load_rule_file(extra)
    return load_rule_files([conf / "problems.toml", conf / "rules.toml", extra])


def test_finding_evidence_is_redacted(book: RuleBook) -> None:
    """Evidence built through RuleBook.finding never carries a secret."""
    f = book.finding("k3s.port-in-use", "k3s", evidence=LEAKY, source=f"mysql://u:{SECRET}@db/x")
    assert f.evidence and all(SECRET not in e for e in f.evidence)
    assert SECRET not in f.source


def test_finding_texts_filled_from_details_are_redacted(book: RuleBook) -> None:
    f = book.finding("k3s.leak-test", "k3s", details={"cmd": f"k3s server --token {SECRET}"})
    assert "k3s server --token" in f.summary.en
    assert SECRET not in json.dumps(f.as_dict(), ensure_ascii=False)


def test_alert_line_carries_no_secret(book: RuleBook) -> None:
    """The structured line on stderr (what `docker logs` shows) is redacted too."""
    f = book.finding("k3s.leak-test", f"K3S_TOKEN={SECRET}", evidence=LEAKY, source=f"https://admin:{SECRET}@x/",
                     details={"cmd": f"k3s agent -t {SECRET}"})
    stream = io.StringIO()
    alerts.configure(stream, json=True)
    alerts.emit([Change("raised", Problem(f, 1.0, 1.0))], ("zh", "en"))
    line = stream.getvalue()
    assert '"problem_raised"' in line and "k3s.leak-test" in line
    assert SECRET not in line
