"""A fault-injecting HTTP proxy in front of the real Label Studio.

It forwards requests unchanged, and on demand answers 5xx, or forwards a request and then drops
the connection without an answer (the server did the work, the client never hears of it), which
is the failure an idempotent import must survive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FaultyProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.fail_next_status: list[int] = []  # answer these statuses (one per request) before forwarding again
        self.drop_after_forward: Callable[[str, str], bool] = lambda method, path: False
        self.requests: list[tuple[str, str]] = []
        # seconds to wait before forwarding a request (a slow Label Studio), by method and path
        self.delay: Callable[[str, str], float] = lambda method, path: 0.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path))
                wait = proxy.delay(self.command, self.path)
                if wait:
                    import time

                    time.sleep(wait)
                if proxy.fail_next_status:
                    status = proxy.fail_next_status.pop(0)
                    payload = b'{"detail": "injected failure"}'
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                upstream = requests.request(
                    self.command, proxy.target + self.path, headers=headers, data=body, timeout=300
                )
                if proxy.drop_after_forward(self.command, self.path):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
