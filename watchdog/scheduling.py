"""Slow checks off the event path: one thread per run, at most one run in flight per task.

supervisord waits for our RESULT before sending the next event and its buffer is small, so
nothing that can hang (the k3s API, an HTTP probe) may run on the event path. A task's
outcome is picked up by the event loop at its next event (TICK_5 at the latest).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None
    error: BaseException | None
    started: float
    finished: float


class BackgroundTask(Generic[T]):
    def __init__(self, name: str, fn: Callable[[], T], interval: float, clock: Callable[[], float]) -> None:
        self.name = name
        self._fn = fn
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done: list[Outcome[T]] = []
        self.next_start = -math.inf
        """When the interval since the last start has passed (read at every tick: an attribute)."""
        self.busy = False
        """A run is in flight (its outcome not yet handed over): a flag the run itself clears."""
        self.finished = False
        """Outcomes wait to be taken (a peek, without the lock)."""

    def maybe_start(self, now: float, force: bool = False) -> bool:
        """Start a run if none is in flight and the interval has passed; never blocks."""
        if not force and now < self.next_start:
            return False
        if self.busy:
            return False
        self.next_start = now + self.interval
        self.busy = True
        self._thread = threading.Thread(target=self._run, args=(now,), name=f"watchdog-{self.name}", daemon=True)
        try:
            self._thread.start()
        except BaseException:  # no thread to be had (RuntimeError at the thread limit): try next period
            self.busy = False
            raise
        return True

    def due(self, now: float) -> bool:
        """Whether ``maybe_start`` would start a run now."""
        return now >= self.next_start and not self.busy

    def take(self) -> list[Outcome[T]]:
        with self._lock:
            done, self._done = self._done, []
            self.finished = False
        return done

    def wait(self, timeout: float) -> bool:
        """Wait for the run in flight (used by one-shot commands and tests, not the listener)."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        return not t.is_alive()

    def _run(self, started: float) -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            try:
                value = self._fn()
            except Exception as e:  # the outcome carries it to the event loop, which logs it
                error = e
            with self._lock:
                self._done.append(Outcome(value, error, started, self._clock()))
                self.finished = True
        finally:
            self.busy = False  # whatever happened, the next period may start a run
