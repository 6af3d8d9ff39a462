"""The model's fast constructors build the same objects as the slow ones."""
from __future__ import annotations

import pytest

from watchdog.model import PHASE_FACTS, ProcessView, process_view


def test_process_view_is_an_ordinary_view() -> None:
    fields = dict(state="RUNNING", since=12.5, pid=7, exitstatus=None, restarts=3, starts=(1.0, 2.0), expected=None)
    fast, slow = process_view(**fields), ProcessView(**fields)  # type: ignore[arg-type]
    assert type(fast) is ProcessView
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast._asdict() == fields
    assert fast._replace(state="EXITED") == slow._replace(state="EXITED")
    assert fast != process_view(**{**fields, "restarts": 4})  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        fast.state = "STOPPED"  # type: ignore[misc]


def test_phase_facts_are_state_expected_and_exit_status() -> None:
    """``PHASE_FACTS`` reads fields by position: it must follow the fields' order."""
    view = ProcessView("EXITED", since=3.0, pid=None, exitstatus=2, restarts=1, starts=(1.0,), expected=False)
    assert PHASE_FACTS(view) == (view.state, view.expected, view.exitstatus) == ("EXITED", False, 2)
