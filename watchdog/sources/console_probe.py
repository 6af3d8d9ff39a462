"""The console's HTTP port → ``ProbeResult``, with a timeout (run in a background task only).

Like the image's init script (``curl http://127.0.0.1:7070``), any HTTP answer counts as the
console answering, whatever its status; no answer (refused, timeout, not HTTP) does not.
"""
from __future__ import annotations

import http.client

from watchdog.model import ProbeResult


def probe(host: str, port: int, path: str = "/", timeout: float = 3.0) -> ProbeResult:
    """One GET of ``http://host:port/path``; never raises, never waits longer than ``timeout`` per step."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    where = f"http://{host}:{port}{path}"
    try:
        conn.request("GET", path, headers={"User-Agent": "rainbond-watchdog", "Connection": "close"})
        resp = conn.getresponse()
        resp.read(1024)
        return ProbeResult(True, f"{where} answered HTTP {resp.status}", resp.status)
    except ConnectionRefusedError:
        return ProbeResult(False, f"{where}: connection refused (nothing listens on port {port})")
    except TimeoutError:
        return ProbeResult(False, f"{where}: no answer within {timeout:g} s")
    except http.client.HTTPException as e:
        return ProbeResult(False, f"{where}: not an HTTP answer ({type(e).__name__})")
    except OSError as e:
        return ProbeResult(False, f"{where}: {e.strerror or e}")
    finally:
        conn.close()
