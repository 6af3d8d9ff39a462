"""The model's fast constructors build the same objects as the slow ones."""
from __future__ import annotations

import dataclasses

import pytest

from watchdog.model import ProcessView, process_view


def test_process_view_is_an_ordinary_frozen_view() -> None:
    fields = dict(state="RUNNING", since=12.5, pid=7, exitstatus=None, restarts=3, starts=(1.0, 2.0), expected=None)
    fast, slow = process_view(**fields), ProcessView(**fields)
    assert type(fast) is ProcessView
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast.phase_facts == slow.phase_facts == ("RUNNING", None, None)
    assert dataclasses.asdict(fast) == fields
    assert dataclasses.replace(fast, state="EXITED") == dataclasses.replace(slow, state="EXITED")
    assert fast != process_view(**{**fields, "restarts": 4})
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.state = "STOPPED"  # type: ignore[misc]
