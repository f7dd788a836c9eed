"""``bench serve``'s HTTP client against a real loopback server: a 200 counts, anything else does not,
and a failed connection is replaced, so a benchmark counts errors instead of crashing."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from aware_ray.bench.serve import http_client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Serve's proxies answer
    bodies: ClassVar[list[bytes]] = []

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/healthz" else 404)

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self._answer(200)

    def log_message(self, *args: object) -> None:
        pass


def _server(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_http_client_counts_answers() -> None:
    server = _server()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        post = http_client(url, [b'{"a": 1}', b'{"b": 2}'])()
        assert post(0) and post(1) and post(2)
        assert _Handler.bodies[-3:] == [b'{"a": 1}', b'{"b": 2}', b'{"a": 1}']  # bodies in turn
        assert http_client(url, [], "/healthz")()(0)
        assert not http_client(url, [], "/nowhere")()(0)
    finally:
        server.shutdown()
        server.server_close()


def test_http_client_counts_a_refused_connection_and_connects_again() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    call = http_client(f"http://127.0.0.1:{port}", [], "/healthz")()
    assert not call(0)  # nothing listens yet: an error, counted, not raised
    server = _server(port)
    try:
        assert call(1)  # a new connection once the server is there
    finally:
        server.shutdown()
        server.server_close()
