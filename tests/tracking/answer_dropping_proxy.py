"""An HTTP proxy on 127.0.0.1 that loses answers: the server does the work, the client never hears back.

It forwards every request to the upstream server and relays the answer, except for the first
``drops`` requests that ``should_drop(path, body)`` picks: those reach the server and are fully
handled (committed), and then the proxy hangs up on the client instead of answering, as a network
that fails on the way back does. The client sees a dropped connection and sends the request again.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class AnswerDroppingProxy:
    """Proxy to ``127.0.0.1:upstream_port``; ``dropped`` counts lost answers, ``matched`` every picked request."""

    def __init__(self, upstream_port: int, should_drop: Callable[[str, bytes], bool], drops: int):
        self.upstream_port = upstream_port
        self.should_drop = should_drop
        self.drops_left = drops
        self.dropped = 0
        self.matched = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="answer-dropping-proxy", daemon=True)
        self._thread.start()

    def _drop_this(self, path: str, body: bytes) -> bool:
        if not self.should_drop(path, body):
            return False
        with self._lock:
            self.matched += 1
            if self.drops_left <= 0:
                return False
            self.drops_left -= 1
            self.dropped += 1
            return True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                if proxy._drop_this(self.path, body):  # handled upstream; the answer is lost on the way back
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

            def log_message(self, format, *args) -> None:  # quiet: pytest shows failures, not every request
                pass

        return Handler

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
