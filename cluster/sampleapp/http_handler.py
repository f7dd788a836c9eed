"""The HTTP handler base the sample app (and the tests' fake servers) build on."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no per-request log line, and TCP_NODELAY: headers and body go out in
    two writes, and without NODELAY delayed ACKs add about 40 ms to every request."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: object) -> None:
        pass
