"""An HTTPS stand-in for the k3s apiserver: the paths the watchdog's poller uses, on the real wire.

* TLS with a CA and a server certificate generated at start (``cryptography``), bearer-token
  auth: without the token, ``401`` with a ``Status`` body, as kube-apiserver answers.
* ``GET /api/v1/namespaces/{ns}/pods`` (``PodList``), ``/api/v1/nodes`` (``NodeList``),
  ``/api/v1/namespaces/{ns}/events`` (``EventList``) with ``labelSelector`` / ``fieldSelector``
  / ``limit``; ``/api/v1/namespaces/{ns}/pods/{name}`` and ``.../pods/{name}/log`` with
  ``container``, ``previous`` and ``tailLines``; ``/version``; ``404`` ``Status`` for the rest.
* Fault modes, switchable while running: ``hang``, ``500``, ``garbage``, ``close``,
  ``wrong-token`` (the server wants another token: 401), ``forbidden`` (403), ``drip`` (a valid
  answer one byte every 0.2 s: each socket read succeeds, the whole never arrives in time).

Run as a process (``make demo`` does): ``python -m tests.kube_api.server --dir DIR --scenario
NAME [--fault MODE]`` writes ``DIR/kubeconfig.yaml`` (and ``DIR/ca.crt``, ``DIR/token``), serves on
127.0.0.1 at a random port, writes ``DIR/port`` once listening, and runs until SIGTERM.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.kube_api import objects
from tests.kube_api.objects import SCENARIOS, Cluster

FAULTS = ("hang", "drip", "500", "garbage", "close", "wrong-token", "forbidden")


# ----------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_pki(common_name: str = "k3s-server-ca") -> Pki:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it (as k3s makes its own)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}@{int(now.timestamp())}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "k3s"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "k3s")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("10.43.0.1")),
            ]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
    )


def kubeconfig_text(server: str, ca_pem: bytes, token: str) -> str:
    """A kubeconfig like k3s.yaml, authenticating with a bearer token."""
    ca = base64.b64encode(ca_pem).decode()
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: {server}\n"
        "  name: default\n"
        "contexts:\n"
        "- context:\n"
        "    cluster: default\n"
        "    user: default\n"
        "  name: default\n"
        "current-context: default\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: default\n"
        "  user:\n"
        f"    token: {token}\n"
    )


# ----------------------------------------------------------------------------- selectors


def _label_match(selector: str, labels: dict[str, str]) -> bool:
    for term in _split_terms(selector):
        term = term.strip()
        if not term:
            continue
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            has = labels.get(m.group(1)) in values
            if has != (m.group(2) == "in"):
                return False
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _field(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def _field_match(selector: str, obj: dict[str, Any]) -> bool:
    for term in selector.split(","):
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if _field(obj, k) == v:
                return False
        else:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if _field(obj, k) != v:
                return False
    return True


# ----------------------------------------------------------------------------- the server


class KubeApi:
    """The stand-in: ``start()``, ``stop()``; ``fault`` and ``cluster`` may change while it runs."""

    def __init__(self, cluster: Cluster, directory: Path, namespace: str = objects.NAMESPACE) -> None:
        self.cluster = cluster
        self.directory = Path(directory)
        self.namespace = namespace
        self.token = secrets.token_hex(16)
        self.fault: str | None = None
        self.requests: list[str] = []
        """Paths (with query) of every request received, authenticated or not."""
        self.writes: list[str] = []
        """``METHOD path`` of every request that was not a GET (refused with 405)."""
        self.pki = make_pki()
        self._release = threading.Event()
        self._rv = 1000
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.connections: set[Any] = set()
        """Open client connections: a stopped server drops them, as a dying k3s does."""

    # --------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig.yaml"

    def start(self, port: int = 0) -> KubeApi:
        self.directory.mkdir(parents=True, exist_ok=True)
        cert = self.directory / "server.crt"
        key = self.directory / "server.key"
        cert.write_bytes(self.pki.cert_pem)
        key.write_bytes(self.pki.key_pem)
        os.chmod(key, 0o600)
        (self.directory / "ca.crt").write_bytes(self.pki.ca_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        api = self

        class Handler(_Handler):
            server_api = api

        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self.write_kubeconfig()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kube-api", daemon=True)
        self._thread.start()
        return self

    def write_kubeconfig(self, token: str | None = None, ca_pem: bytes | None = None) -> Path:
        """(Re)write the kubeconfig; another token or CA makes a client that the server refuses."""
        text = kubeconfig_text(self.url, ca_pem or self.pki.ca_pem, token or self.token)
        tmp = self.kubeconfig.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.kubeconfig)
        return self.kubeconfig

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._lock:
            conns, self.connections = list(self.connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> KubeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_fault(self, fault: str | None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        self.fault = fault
        if fault not in ("hang", "drip"):
            self._release.set()
            self._release = threading.Event()

    def resource_version(self) -> str:
        with self._lock:
            self._rv += 1
            return str(self._rv)

    # --------------------------------------------------------------- routing

    def route(self, path: str, query: dict[str, str]) -> tuple[int, Any, str]:
        """(status, body, content type) for an authenticated GET."""
        ns_ = re.escape(self.namespace)
        c = self.cluster
        if path == "/version":
            return 200, {"major": "1", "minor": "25", "gitVersion": "v1.25.16+k3s4", "platform": "linux/amd64"}, "json"
        if path == "/api/v1/nodes":
            return 200, self._list("NodeList", c.nodes, query), "json"
        m = re.fullmatch(r"/api/v1/nodes/([^/]+)", path)
        if m:
            return self._get("nodes", c.nodes, m.group(1))
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/(pods|events)", path)
        if m:
            items = (c.pods if m.group(2) == "pods" else c.events) if m.group(1) == self.namespace else []
            return 200, self._list("PodList" if m.group(2) == "pods" else "EventList", items, query), "json"
        m = re.fullmatch(rf"/api/v1/namespaces/{ns_}/pods/([^/]+)", path)
        if m:
            return self._get("pods", c.pods, m.group(1))
        m = re.fullmatch(rf"/api/v1/namespaces/{ns_}/pods/([^/]+)/log", path)
        if m:
            return self._log(m.group(1), query)
        return 404, status(404, "NotFound", "the server could not find the requested resource"), "json"

    def _list(self, kind: str, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        picked = [i for i in items if _label_match(query.get("labelSelector", ""), i["metadata"].get("labels", {}))
                  and _field_match(query.get("fieldSelector", ""), i)]
        rv = self.resource_version()
        out = []
        for i in picked:
            i = dict(i)
            i["metadata"] = {**i["metadata"], "resourceVersion": rv}
            out.append(i)
        limit = int(query.get("limit", "0") or 0)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if limit and len(out) > limit:
            # A real apiserver would return a continue token; the poller never pages, so say so.
            out = out[:limit]
            meta["continue"] = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTAwMH0"
            meta["remainingItemCount"] = len(picked) - limit
        return {"kind": kind, "apiVersion": "v1", "metadata": meta, "items": out}

    def _get(self, resource: str, items: list[dict[str, Any]], name: str) -> tuple[int, Any, str]:
        for i in items:
            if i["metadata"]["name"] == name:
                kind = "Pod" if resource == "pods" else "Node"
                return 200, {"kind": kind, "apiVersion": "v1", **i}, "json"
        return 404, status(404, "NotFound", f'{resource} "{name}" not found', name=name, kind=resource), "json"

    def _log(self, name: str, query: dict[str, str]) -> tuple[int, Any, str]:
        pod = next((p for p in self.cluster.pods if p["metadata"]["name"] == name), None)
        if pod is None:
            return 404, status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods"), "json"
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if not container:
            if len(containers) > 1:
                return 400, status(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                                      f"choose one of: [{' '.join(containers)}]"), "json"
            container = containers[0]
        if container not in containers:
            return 400, status(400, "BadRequest", f"container {container} is not valid for pod {name}"), "json"
        previous = query.get("previous", "false") == "true"
        lines = self.cluster.logs.get((name, container, previous))
        if lines is None:
            if previous:
                msg = f'previous terminated container "{container}" in pod "{name}" not found'
            else:
                msg = f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            return 400, status(400, "BadRequest", msg), "json"
        tail = query.get("tailLines")
        if tail is not None:
            n = int(tail)
            lines = lines[-n:] if n > 0 else []
        return 200, "".join(line + "\n" for line in lines), "text"


def status(code: int, reason: str, message: str, **details: str) -> dict[str, Any]:
    """A ``Status`` object as kube-apiserver sends for errors."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class _Handler(BaseHTTPRequestHandler):
    server_api: KubeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server_api._lock:
            self.server_api.connections.add(self.connection)
        # Go's net/http (the real apiserver) disables Nagle's algorithm; so do we, or every
        # response waits for a delayed ACK (~40 ms) and polls look slower than they are.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake happens here, in the handler's thread, not in the accept loop.
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.close_connection = True

    def finish(self) -> None:
        with self.server_api._lock:
            self.server_api.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        api = self.server_api
        api.requests.append(self.path)
        fault = api.fault
        if fault == "hang":
            release = api._release
            release.wait(300)
            self.close_connection = True
            return
        if fault == "drip":
            # Slowloris: a valid beginning, one byte at a time; every socket read succeeds.
            release = api._release
            body = b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[' + b" " * 4000 + b"]}"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            for byte in head.encode() + body:
                if release.wait(0.2):
                    break
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    break
            self.close_connection = True
            return
        if fault == "close":
            self.close_connection = True
            self.connection.close()
            return
        auth = self.headers.get("Authorization", "")
        expected = api.token if fault != "wrong-token" else "not-" + api.token
        if auth != f"Bearer {expected}":
            self._send(401, status(401, "Unauthorized", "Unauthorized"))
            return
        parsed = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        if fault == "forbidden":
            self._send(403, status(403, "Forbidden", f'pods is forbidden: User "system:anonymous" cannot list resource '
                                                     f'"pods" in API group "" in the namespace "{api.namespace}"'))
            return
        if fault == "500":
            self._send(500, status(500, "InternalError", "Internal error occurred: etcdserver: request timed out"))
            return
        if fault == "garbage":
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        try:
            code, body, kind = api.route(parsed.path, query)
        except (ValueError, KeyError) as e:
            code, body, kind = 400, status(400, "BadRequest", str(e)), "json"
        self._send(code, body, kind)

    def _refuse_write(self) -> None:
        """Any method but GET is a write: recorded (a read-only client sends none) and refused."""
        self.server_api.writes.append(f"{self.command} {self.path}")
        self._send(405, status(405, "MethodNotAllowed", "the stand-in is read-only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_write

    def _send(self, code: int, body: Any, kind: str = "json") -> None:
        if kind == "json":
            data = json.dumps(body, separators=(",", ":")).encode()
            ctype = "application/json"
        else:
            data = str(body).encode()
            ctype = "text/plain"
        self.send_response(code)
        self.send_header("Audit-Id", secrets.token_hex(8))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# ----------------------------------------------------------------------------- as a process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube_api.server", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, type=Path, help="folder for kubeconfig.yaml, ca.crt, token, port")
    parser.add_argument("--scenario", default="healthy", choices=SCENARIOS)
    parser.add_argument("--fault", choices=FAULTS, default=None, help="answer every request with this fault")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--extra-pods", type=int, default=0, help="add this many healthy pods")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    api = KubeApi(objects.scenario(args.scenario, time.time(), args.extra_pods), args.dir)
    api.set_fault(args.fault)
    api.start(args.port)
    (args.dir / "token").write_text(api.token + "\n")
    port_file = args.dir / "port"
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(f"{api.port}\n")
    os.replace(tmp, port_file)
    print(f"kube-api stand-in: scenario {args.scenario} on {api.url}, kubeconfig {api.kubeconfig}", file=sys.stderr, flush=True)
    stop.wait()
    api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
