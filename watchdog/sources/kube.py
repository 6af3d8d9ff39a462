"""The k3s API → observations. The only module that imports ``kubernetes`` (and its ``urllib3``).

Both are imported lazily, inside functions: importing the client costs most of a second, and the
listener must answer supervisord's first ``READY`` fast; polls run in a background thread.

Every client is built from an explicit ``Configuration`` loaded from one kubeconfig file (never
the library's global default), with retries off and connect / read timeouts on every request,
bounded together by the poll's deadline. Responses are read raw and parsed here, so that a body
that is not JSON is recognised, and the wire dicts stop here: callers get ``PodObs``,
``NodeObs``, ``EventObs``. Failures are mapped to ``ApiUnavailable`` with a classified reason.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import weakref
from datetime import datetime
from typing import Any, Callable, Mapping

from watchdog.model import ConditionObs, ContainerObs, EventObs, NodeObs, PodObs


class ApiUnavailable(Exception):
    """The API did not answer usefully (temporary: the next poll tries again).

    ``reason`` is one of ``connection refused``, ``tls``, ``credentials``, ``server error``,
    ``timeout``, ``connection closed``, ``not json``, ``http error``, ``kubeconfig``; ``str(e)``
    is one sentence that says what happened.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class DetailUnavailable(Exception):
    """One detail request (events, a previous log) failed; the poll itself stands."""


def find_kubeconfig(configured: str, env: Mapping[str, str]) -> str | None:
    """The configured kubeconfig if it exists, then the first existing file in ``$KUBECONFIG``."""
    candidates = [configured] if configured else []
    candidates += [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


class KubeClient:
    """A CoreV1 client for one kubeconfig, with every call bounded by a timeout and a deadline."""

    def __init__(self, kubeconfig: str, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.kubeconfig = kubeconfig
        self.timeout = timeout
        self.clock = clock
        self.requests = 0
        self._api: Any = None
        self._stamp = _file_stamp(kubeconfig)
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        """The client's TCP sockets, so that a request past its deadline can be cut off."""

    def stale(self) -> bool:
        """The kubeconfig file changed (k3s rewrote it) or disappeared since the client was built."""
        return _file_stamp(self.kubeconfig) != self._stamp

    def _core(self) -> Any:
        if self._api is None:
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException

            cfg = client.Configuration()
            try:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=self.kubeconfig, client_configuration=cfg, persist_config=False
                )
            except (ConfigException, OSError, ValueError, TypeError) as e:
                raise ApiUnavailable("kubeconfig", f"cannot use {self.kubeconfig}: {e}") from e
            except Exception as e:  # the YAML parser's errors
                raise ApiUnavailable("kubeconfig", f"cannot use {self.kubeconfig}: {e}") from e
            cfg.retries = False  # one attempt per request: the next poll is the retry
            if hasattr(cfg, "client_go_retries"):
                cfg.client_go_retries = False
            api_client = client.ApiClient(cfg)
            _track_sockets(api_client, self._sockets)
            self._api = _CoreV1(api_client)
        return self._api

    def prepare(self) -> None:
        """Import the client and load the kubeconfig now (local work, outside the request deadline)."""
        self._core()

    def close(self) -> None:
        if self._api is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._api.api_client.close()
            self._api = None

    # ------------------------------------------------------------------ calls

    def list_pods(self, namespace: str, deadline: float) -> tuple[PodObs, ...]:
        doc = self._json("list pods", deadline, lambda api, t: api.list_namespaced_pod(
            namespace, _preload_content=False, _request_timeout=t))
        return tuple(pod_from_dict(d) for d in _items(doc, "PodList"))

    def list_nodes(self, deadline: float) -> tuple[NodeObs, ...]:
        doc = self._json("list nodes", deadline, lambda api, t: api.list_node(_preload_content=False, _request_timeout=t))
        return tuple(node_from_dict(d) for d in _items(doc, "NodeList"))

    def pod_events(self, namespace: str, pod: str, deadline: float) -> tuple[EventObs, ...]:
        try:
            doc = self._json("list events", deadline, lambda api, t: api.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={pod}", _preload_content=False, _request_timeout=t))
            return tuple(event_from_dict(d) for d in _items(doc, "EventList"))
        except ApiUnavailable as e:
            raise DetailUnavailable(f"events of {pod}: {e}") from e

    def previous_log(self, namespace: str, pod: str, container: str, lines: int, deadline: float) -> tuple[str, ...]:
        """The last ``lines`` of the previous (crashed) container's log."""
        try:
            resp = self._call("read log", deadline, lambda api, t: api.read_namespaced_pod_log(
                pod, namespace, container=container, previous=True, tail_lines=lines,
                _preload_content=False, _request_timeout=t))
        except ApiUnavailable as e:
            raise DetailUnavailable(f"previous log of {pod}/{container}: {e}") from e
        text = resp.decode("utf-8", errors="replace")
        return tuple(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ plumbing

    def _json(self, what: str, deadline: float, fn: Callable[[Any, tuple[float, float]], Any]) -> Any:
        data = self._call(what, deadline, fn)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            snippet = data[:80].decode("utf-8", errors="replace").strip()
            raise ApiUnavailable("not json", f"{what}: the answer is not JSON: {snippet!r}") from e

    def _call(self, what: str, deadline: float, fn: Callable[[Any, tuple[float, float]], Any]) -> bytes:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise ApiUnavailable("timeout", f"{what}: no time left in this poll")
        t = min(self.timeout, remaining)
        api = self._core()
        self.requests += 1
        # The timeouts bound each socket operation, not the whole answer: a server that drips a
        # byte at a time would hold the poll for ever. At the deadline, cut the connections off.
        cut = threading.Event()
        timer = threading.Timer(remaining, self._cut_off, args=(cut,))
        timer.daemon = True
        timer.start()
        try:
            resp = fn(api, (t, t))
            data = resp.data if resp.data is not None else resp.read()
            if not isinstance(data, bytes):
                data = str(data).encode()
            return data
        except Exception as e:
            if cut.is_set():
                raise ApiUnavailable("timeout", f"{what}: no complete answer within {remaining:.3g} s") from e
            raise classify(what, e, t) from e
        finally:
            timer.cancel()

    def _cut_off(self, cut: threading.Event) -> None:
        cut.set()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _CoreV1:
    """The four core/v1 reads the poller makes, through the client's own ``ApiClient``.

    The generated ``CoreV1Api`` module alone costs about 22 MiB of memory to import (every
    endpoint of the core group, with pydantic validation); the poller needs four GETs and parses
    the JSON itself, so it builds them with ``param_serialize`` and ``call_api`` of the same
    client: same kubeconfig handling, TLS, bearer token and timeouts.
    """

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def list_namespaced_pod(self, namespace: str, **kw: Any) -> Any:
        return self._get("/api/v1/namespaces/{namespace}/pods", {"namespace": namespace}, [], kw)

    def list_node(self, **kw: Any) -> Any:
        return self._get("/api/v1/nodes", {}, [], kw)

    def list_namespaced_event(self, namespace: str, field_selector: str, **kw: Any) -> Any:
        return self._get("/api/v1/namespaces/{namespace}/events", {"namespace": namespace},
                         [("fieldSelector", field_selector)], kw)

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str, previous: bool,
                                tail_lines: int, **kw: Any) -> Any:
        query = [("container", container), ("previous", "true" if previous else "false"), ("tailLines", tail_lines)]
        return self._get("/api/v1/namespaces/{namespace}/pods/{name}/log", {"namespace": namespace, "name": name},
                         query, kw, accept="text/plain")

    def _get(self, path: str, path_params: dict[str, str], query: list[tuple[str, Any]], kw: dict[str, Any],
             accept: str = "application/json") -> Any:
        from kubernetes.client.exceptions import ApiException

        request = self.api_client.param_serialize(
            method="GET", resource_path=path, path_params=path_params, query_params=query,
            header_params={"Accept": accept}, auth_settings=["BearerToken"],
        )
        resp = self.api_client.call_api(*request, _request_timeout=kw.get("_request_timeout"))
        if not 200 <= resp.status <= 299:
            resp.read()
            raise ApiException.from_response(http_resp=resp, body=None, data=None)
        return resp.response


def _track_sockets(api_client: Any, registry: weakref.WeakSet[socket.socket]) -> None:
    """Make the client's HTTPS pool remember every socket it opens (in ``registry``)."""
    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool

    class TrackedConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            registry.add(self.sock)  # the TLS socket (the TCP one is detached into it)

    class TrackedPool(HTTPSConnectionPool):
        ConnectionCls = TrackedConnection

    manager = api_client.rest_client.pool_manager
    manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": TrackedPool}


def classify(what: str, e: BaseException, timeout: float) -> ApiUnavailable:
    """Map a client exception to one of the classified reasons."""
    import urllib3.exceptions as u3
    from kubernetes.client.exceptions import ApiException

    if isinstance(e, ApiUnavailable):
        return e
    if isinstance(e, ApiException):
        status = int(e.status or 0)
        if status == 0 and "SSL" in str(e.reason):
            return ApiUnavailable("tls", f"{what}: TLS handshake failed: {_first_line(str(e.reason).splitlines()[-1])}")
        message = _status_message(e.body) or str(e.reason or "")
        if status in (401, 403):
            return ApiUnavailable("credentials", f"{what}: HTTP {status} {message}: the kubeconfig's credentials are refused")
        if status >= 500:
            return ApiUnavailable("server error", f"{what}: HTTP {status} {message}")
        return ApiUnavailable("http error", f"{what}: HTTP {status} {message}")
    if isinstance(e, u3.MaxRetryError) and e.reason is not None:
        return classify(what, e.reason, timeout)
    if isinstance(e, u3.NewConnectionError):
        text = str(e)
        if "refused" in text.lower():
            return ApiUnavailable("connection refused", f"{what}: connection refused (k3s not serving yet, or gone)")
        return ApiUnavailable("connection refused", f"{what}: cannot connect: {_first_line(text)}")
    if isinstance(e, (u3.ConnectTimeoutError, u3.ReadTimeoutError, TimeoutError)):
        return ApiUnavailable("timeout", f"{what}: no answer within {timeout:g} s")
    if isinstance(e, u3.SSLError):
        return ApiUnavailable("tls", f"{what}: TLS handshake failed: {_first_line(str(e))}")
    if isinstance(e, u3.ProtocolError):
        inner = e.args[1] if len(e.args) > 1 else None
        if isinstance(inner, ConnectionRefusedError):
            return ApiUnavailable("connection refused", f"{what}: connection refused (k3s not serving yet, or gone)")
        if isinstance(inner, (TimeoutError,)):
            return ApiUnavailable("timeout", f"{what}: no answer within {timeout:g} s")
        return ApiUnavailable("connection closed", f"{what}: the server closed the connection without an answer")
    if isinstance(e, ConnectionRefusedError):
        return ApiUnavailable("connection refused", f"{what}: connection refused (k3s not serving yet, or gone)")
    if isinstance(e, u3.HTTPError | OSError):
        return ApiUnavailable("connection closed", f"{what}: {type(e).__name__}: {_first_line(str(e))}")
    return ApiUnavailable("http error", f"{what}: {type(e).__name__}: {_first_line(str(e))}")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _status_message(body: Any) -> str:
    if not body:
        return ""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return ""
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def _file_stamp(path: str) -> tuple[float, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


def _items(doc: Any, kind: str) -> list[Mapping[str, Any]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ApiUnavailable("not json", f"expected a {kind}, got {str(doc)[:80]!r}")
    return [i for i in doc["items"] if isinstance(i, dict)]


# ----------------------------------------------------------------------------- wire → observations


def parse_time(value: Any) -> float | None:
    """RFC 3339 (``2026-11-30T08:10:06Z``, with or without fractions) → epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _d(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _container(d: Mapping[str, Any], init: bool = False) -> ContainerObs:
    state = _d(d.get("state"))
    kind = next((k for k in ("running", "waiting", "terminated") if k in state and state[k] is not None), "unknown")
    cur = _d(state.get(kind))
    last = _d(_d(d.get("lastState")).get("terminated"))
    exit_code = cur.get("exitCode")
    last_code = last.get("exitCode")
    return ContainerObs(
        name=str(d.get("name", "")),
        ready=bool(d.get("ready")),
        restarts=int(d.get("restartCount") or 0),
        state=kind,
        reason=str(cur.get("reason") or ""),
        message=str(cur.get("message") or ""),
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        last_reason=str(last.get("reason") or ""),
        last_exit_code=int(last_code) if isinstance(last_code, int) else None,
        last_finished=parse_time(last.get("finishedAt")),
        init=init,
    )


def _conditions(items: Any) -> tuple[ConditionObs, ...]:
    out = []
    for c in items if isinstance(items, list) else []:
        c = _d(c)
        out.append(ConditionObs(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=str(c.get("reason") or ""),
            message=str(c.get("message") or ""),
            since=parse_time(c.get("lastTransitionTime")),
        ))
    return tuple(out)


def pod_from_dict(d: Mapping[str, Any]) -> PodObs:
    meta, spec, status = _d(d.get("metadata")), _d(d.get("spec")), _d(d.get("status"))
    statuses = status.get("containerStatuses") or []
    init_statuses = status.get("initContainerStatuses") or []
    # A container that has no status yet (being created) is known from the spec.
    named = {str(_d(c).get("name")) for c in statuses}
    missing = [
        ContainerObs(name=str(_d(c).get("name", "")), ready=False, restarts=0, state="unknown")
        for c in spec.get("containers") or []
        if str(_d(c).get("name")) not in named
    ]
    return PodObs(
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or "Unknown"),
        created=parse_time(meta.get("creationTimestamp")) or 0.0,
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        node=str(spec.get("nodeName") or ""),
        containers=tuple(_container(_d(c)) for c in statuses) + tuple(missing),
        init_containers=tuple(_container(_d(c), init=True) for c in init_statuses),
        conditions=_conditions(status.get("conditions")),
        deleting=meta.get("deletionTimestamp") is not None,
    )


def node_from_dict(d: Mapping[str, Any]) -> NodeObs:
    meta, status = _d(d.get("metadata")), _d(d.get("status"))
    return NodeObs(
        name=str(meta.get("name", "")),
        created=parse_time(meta.get("creationTimestamp")) or 0.0,
        conditions=_conditions(status.get("conditions")),
    )


def event_from_dict(d: Mapping[str, Any]) -> EventObs:
    """A core/v1 Event; newer components fill ``series`` and ``eventTime`` instead of count/timestamps."""
    series = _d(d.get("series"))
    count = d.get("count") or series.get("count") or 1
    first = parse_time(d.get("firstTimestamp")) or parse_time(d.get("eventTime"))
    last = (parse_time(d.get("lastTimestamp")) or parse_time(series.get("lastObservedTime"))
            or parse_time(d.get("eventTime")) or first)
    source = _d(d.get("source")).get("component") or d.get("reportingComponent") or ""
    return EventObs(
        type=str(d.get("type") or ""),
        reason=str(d.get("reason") or ""),
        message=str(d.get("message") or "").strip(),
        source=str(source),
        count=int(count),
        first=first,
        last=last,
    )
