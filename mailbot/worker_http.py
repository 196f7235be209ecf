"""The worker's small HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for the supervisor.

Standard library only (one thread per request, a daemon serving thread) because it answers a scrape
every few seconds, not users. Off unless `[observability] listen = "HOST:PORT"` is set; keep it on
loopback or a private network: the metrics name mailboxes and the rule-set version.

/healthz answers 200 while the process and its scheduler are alive (a liveness probe restarts a
hung worker); /readyz answers 200 only when the database answers and every enabled mailbox was
polled recently without error, and 503 with one line per reason otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mailbot.services.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("mailbot.worker.http")


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class WorkerHttp:
    """Serves the endpoints on its own thread; `stop()` closes the socket and joins the thread."""

    def __init__(self, listen: str, metrics: Metrics, alive: Callable[[], bool]) -> None:
        host, port = parse_listen(listen)
        handler = _handler(metrics, alive)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="worker-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> WorkerHttp:
        self._thread.start()
        log.info("metrics and health endpoints on http://%s/ (/metrics, /healthz, /readyz)", self.address)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: Metrics, alive: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mailbot"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.exposition(), CONTENT_TYPE)
            elif path == "/healthz":
                ok = alive()
                self._send(200 if ok else 503, b"ok\n" if ok else b"stopping\n")
            elif path == "/readyz":
                ready = metrics.readiness()
                body = "ready\n" if ready.ok else "".join(f"{p}\n" for p in ready.problems)
                self._send(200 if ready.ok else 503, body.encode())
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
