"""Envelopes as each supervisord generation frames them, and the image's real-looking output.

supervisord 3.3.1 on Python 2 passes the program's bytes through and counts ``len`` in bytes;
supervisord 4 on Python 3 decodes them (invalid UTF-8 becomes ``Undecodable: b'...'``), counts
characters and writes UTF-8.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

Unit = Literal["bytes", "characters"]

ESC = "\x1b"
DOTS = "\u00b7" * 120  # the init script's waiting runs: two bytes each in UTF-8


def init_line(level: str, text: str, when: str = "2026-12-03 07:56:10") -> bytes:
    """One line as entrypoint-dind.sh prints it: date, level, ANSI colour."""
    colour = {"INFO": "32", "WARN": "33", "ERROR": "31"}[level]
    return f"{ESC}[{colour}m{when} {level}: {text}{ESC}[0m\n".encode()


IMAGE_OUTPUT: list[bytes] = [
    init_line("INFO", f"Containerd is starting, please wait {DOTS}"),
    init_line("INFO", f"Start loaded images {DOTS}"),
    init_line("WARN", "内存小于 2048 MB，可能无法正常运行"),
    init_line("ERROR", "加载镜像失败：no space left on device"),
    b"half a character \xc2 then invalid \xff\xfe and \xc3\x28 bytes\n",
    init_line("INFO", "x" * 200 * 1024),  # one 200 KB line
    init_line("INFO", "镜像" * 40_000),  # 240 KB of three-byte characters
]


def log_payload(data: bytes, unit: Unit, name: str = "init_rainbond", pid: int = 7) -> bytes:
    """A PROCESS_LOG_STDOUT payload as the generation of ``unit`` writes it."""
    head = f"processname:{name} groupname:{name} pid:{pid} channel:stdout\n".encode()
    if unit == "bytes":
        return head + data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = f"Undecodable: {data!r}"
    return head + text.encode()


def expected_text(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")


def envelope(eventname: str, payload: bytes, unit: Unit, serial: int = 1) -> bytes:
    n = len(payload) if unit == "bytes" else len(payload.decode("utf-8"))
    header = (f"ver:3.0 server:supervisor serial:{serial} pool:watchdog poolserial:{serial} "
              f"eventname:{eventname} len:{n}\n")
    return header.encode() + payload


def state_envelope(to_state: str, name: str, serial: int, unit: Unit, pid: int = 0) -> bytes:
    payload = f"processname:{name} groupname:{name} from_state:STARTING pid:{pid}".encode()
    return envelope(f"PROCESS_STATE_{to_state}", payload, unit, serial)


class PipeSupervisor:
    """Plays supervisord on real pipes: sends one envelope after READY, times the RESULT."""

    def __init__(self) -> None:
        r_in, self.w_in = os.pipe()
        self.r_out, w_out = os.pipe()
        self.stdin = os.fdopen(r_in, "rb", buffering=0)
        self.stdout = os.fdopen(w_out, "w", encoding="utf-8", newline="\n")
        self.buffer = b""

    def expect(self, token: bytes, timeout: float) -> float:
        """Seconds until ``token`` arrived (consumed); fails after ``timeout``."""
        import select

        started = time.monotonic()
        while token not in self.buffer:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise AssertionError(f"no {token!r} within {timeout} s (got {self.buffer!r})")
            ready, _, _ = select.select([self.r_out], [], [], left)
            if ready:
                self.buffer += os.read(self.r_out, 4096)
        before, _, self.buffer = self.buffer.partition(token)
        assert before == b"", f"unexpected bytes on the protocol channel: {before!r}"
        return time.monotonic() - started

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.w_in, view):]

    def send(self, data: bytes, timeout: float = 5.0, after_ready: bool = True) -> float:
        """READY (unless already taken), then the envelope; the seconds from its last byte to the RESULT."""
        if after_ready:
            self.expect(b"READY\n", timeout)
        writer = threading.Thread(target=self.write, args=(data,), daemon=True)  # may exceed the pipe buffer
        writer.start()
        writer.join(timeout)
        started = time.monotonic()
        self.expect(b"RESULT 2\nOK", timeout)
        return time.monotonic() - started

    def close(self) -> None:
        os.close(self.w_in)


@contextmanager
def listening(target: Any, *args: Any, **kwargs: Any) -> Iterator[PipeSupervisor]:
    """Run ``target(channel_stdin, channel_stdout, *args, **kwargs)`` in a thread on real pipes."""
    sup = PipeSupervisor()
    t = threading.Thread(target=target, args=(sup.stdin, sup.stdout, *args), kwargs=kwargs, daemon=True)
    t.start()
    try:
        yield sup
    finally:
        sup.close()
        t.join(10)
        assert not t.is_alive(), "the listener did not stop at end of input"
        sup.stdin.close()
        sup.stdout.close()
        os.close(sup.r_out)
