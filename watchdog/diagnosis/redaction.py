"""Secrets out of evidence: log lines are quoted in the status file and in `docker logs`."""
from __future__ import annotations

import re

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*\"?(?:bearer|basic)\s+)[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + MASK),
    # --token xxx, --token=xxx, --agent-token, --datastore-endpoint with credentials handled below
    (re.compile(r"(?i)(--[a-z-]*(?:token|password|secret)(?:-file)?[= ]\s*)(\"[^\"]*\"|'[^']*'|\S+)"), r"\1" + MASK),
    # K3S_TOKEN=xxx, MYSQL_PASSWORD=xxx, SECRET_KEY: xxx, "password": "xxx", token=xxx
    (
        re.compile(
            r"(?i)(\b[\w.-]*(?:token|passw(?:or)?d|passwd|secret|api[_-]?key|access[_-]?key)[\w.-]*"
            # MySQL's "(using password: YES)" says whether one was sent, not what it is.
            r"\"?\s*[=:]\s*)(?!(?:YES|NO)\))(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
        ),
        r"\1" + MASK,
    ),
    # k3s's short token flag: k3s agent -s https://server:6443 -t <token>
    (re.compile(r"(\bk3s\b[^\n]*?\s-t[= ]\s*)(\S+)"), r"\1" + MASK),
    # scheme://user:password@host
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(@)"), r"\1" + MASK + r"\2"),
    # k3s node tokens: K10<hex>::server:<hex>
    (re.compile(r"\bK10[0-9a-f]{16,}::[\w.-]+:[0-9a-f]+\b"), MASK),
    # JSON Web Tokens (service account tokens) wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
)


def redact(line: str) -> str:
    """The line with tokens, passwords and credentials replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        line = pattern.sub(replacement, line)
    return line
