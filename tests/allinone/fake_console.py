"""A stand-in for the Rainbond console: gunicorn-like log lines, then HTTP on a local port.

Usage: python -m tests.allinone.fake_console --port PORT [--host 127.0.0.1]
Answers every GET with a small page until SIGTERM; access lines go to stdout (console.log).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = b"<!doctype html><title>Rainbond</title><p>Rainbond console (stand-in)</p>\n"


def log(level: str, msg: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
    print(f"[{now}] [{os.getpid()}] [{level}] {msg}", flush=True)


class Handler(BaseHTTPRequestHandler):
    server_version = "gunicorn"
    sys_version = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        print(f'{self.client_address[0]} - - "{self.requestline}" {args[1] if len(args) > 1 else "-"}', flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=7070)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    log("INFO", "Starting gunicorn 20.1.0")
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as e:
        log("ERROR", f"Connection in use: ('{args.host}', {args.port}): {e.strerror}")
        log("ERROR", "Retrying in 1 second.")
        return 1
    server.daemon_threads = True
    log("INFO", f"Listening at: http://{args.host}:{args.port} ({os.getpid()})")
    log("INFO", "Using worker: gthread")

    def on_term(signum: int, frame: object) -> None:
        log("INFO", "Handling signal: term")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("INFO", "Shutting down: Master")
    return 0


if __name__ == "__main__":
    sys.exit(main())
