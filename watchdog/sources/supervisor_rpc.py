"""supervisord's XML-RPC interface: the programs' real states, and details of a failure.

A listener started after the programs only sees later transitions, so at start (and every
TICK_60) the listener reads every program's state here. ``SUPERVISOR_SERVER_URL`` (and
``SUPERVISOR_USERNAME`` / ``SUPERVISOR_PASSWORD``) are in the environment supervisord gives its
children. Every call has a timeout: supervisord is local, but never wait unboundedly.
"""
from __future__ import annotations

import base64
import http.client
import socket
import urllib.parse
import xmlrpc.client
from typing import Any, Mapping

from watchdog.model import ProcessInfo


class RpcUnavailable(Exception):
    """supervisord cannot be asked right now (temporary: retry on the next tick)."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    def __init__(self, url: str, timeout: float, username: str, password: str) -> None:
        super().__init__()
        self._url = urllib.parse.urlparse(url)
        self._timeout = timeout
        self._auth = ""
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auth = f"Basic {token}"

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._url.scheme == "unix":
            return _UnixHTTPConnection(self._url.path, self._timeout)
        return http.client.HTTPConnection(self._url.netloc, timeout=self._timeout)

    def send_headers(self, connection: http.client.HTTPConnection, headers: Any) -> None:
        if self._auth:
            connection.putheader("Authorization", self._auth)
        super().send_headers(connection, headers)


class SupervisorRpc:
    """A thin client for the three calls the watchdog needs."""

    def __init__(self, url: str, timeout: float = 2.0, username: str = "", password: str = "") -> None:
        self.url = url
        transport = _Transport(url, timeout, username, password)
        # The endpoint path is always /RPC2; the host part is ignored for unix sockets.
        self._proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport, allow_none=True)

    @classmethod
    def from_environment(cls, env: Mapping[str, str], timeout: float) -> SupervisorRpc | None:
        url = env.get("SUPERVISOR_SERVER_URL", "")
        if not url:
            return None
        return cls(url, timeout, env.get("SUPERVISOR_USERNAME", ""), env.get("SUPERVISOR_PASSWORD", ""))

    def supervisor_version(self) -> str:
        """``supervisor.getSupervisorVersion`` (e.g. ``"3.3.1"``); raises ``RpcUnavailable``."""
        try:
            return str(self._call("getSupervisorVersion"))
        except xmlrpc.client.Fault as e:
            raise RpcUnavailable(f"getSupervisorVersion: {e.faultString}") from e

    def all_process_info(self) -> list[ProcessInfo]:
        return [process_info_from_dict(d) for d in self._call("getAllProcessInfo")]

    def process_info(self, name: str) -> ProcessInfo | None:
        """Info about one program; ``None`` when supervisord has no such program."""
        try:
            return process_info_from_dict(self._call("getProcessInfo", name))
        except xmlrpc.client.Fault as e:
            if "BAD_NAME" in e.faultString:
                return None
            raise RpcUnavailable(f"getProcessInfo({name}): {e.faultString}") from e

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault:
            raise
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as e:
            raise RpcUnavailable(f"{method} over {self.url}: {e}") from e
        except xmlrpc.client.ResponseError as e:
            raise RpcUnavailable(f"{method} over {self.url}: bad response: {e}") from e


def process_info_from_dict(d: Mapping[str, Any]) -> ProcessInfo:
    """Map one ``getProcessInfo`` struct (the wire dict stops here)."""
    pid = int(d.get("pid") or 0)
    start = float(d.get("start") or 0)
    stop = float(d.get("stop") or 0)
    return ProcessInfo(
        name=str(d.get("name", "")),
        state=str(d.get("statename", "UNKNOWN")),
        pid=pid or None,
        exitstatus=int(d["exitstatus"]) if d.get("exitstatus") is not None else None,
        spawnerr=str(d.get("spawnerr") or ""),
        description=str(d.get("description") or ""),
        start=start or None,
        stop=stop or None,
    )
