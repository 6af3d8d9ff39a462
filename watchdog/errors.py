"""The errors a command reports as one sentence with exit status 2.

Kept apart from ``app`` so that the light commands (``status``, ``check``) need not import the
listener, the rules engine or the Kubernetes client to report them.
"""
from __future__ import annotations

from watchdog.config import ConfigError
from watchdog.sinks.status_file import StatusUnavailable


class UsageError(Exception):
    """Bad usage or input that a command cannot work with (exit 2)."""


USER_ERRORS = (ConfigError, StatusUnavailable, UsageError)
"""Errors a command reports as one sentence with exit status 2."""
