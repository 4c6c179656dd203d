"""The HTTPS transport of the twin's apiserver: TLS, bearer-token auth, keep-alive, open/closed.

The KubeCluster facade owns one ApiServer. Requests are parsed into a ``Request`` and passed to the
router (handlers.Api.dispatch); a ``Response`` is either a whole body or a stream of chunks (watch).
Closing the endpoint (R-CRT-11) closes the listening socket and every open connection, so clients
see "connection refused" as with a real closed endpoint; the port stays bound (not listening) while
closed, so that nothing else on the machine takes it, and reopening listens on it again.
"""

from __future__ import annotations

import hmac
import logging
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twin.kube import errors

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 120.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    closed: Any = field(default_factory=threading.Event)  # .is_set(): endpoint closed or client gone

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None


Dispatch = Callable[[Request], Response]


def status_response(error: errors.KubeError) -> Response:
    import json

    return Response(error.code, json.dumps(error.to_status()).encode())


class _Gone:
    """``is_set()`` once the endpoint closed or the client hung up: ends a streaming response early.

    A client does not send anything while it reads a watch, so a readable socket means it closed
    (FIN or TLS close_notify); without this an idle watch would hold its thread until its timeout.
    """

    def __init__(self, server_closed: threading.Event, connection: socket.socket):
        self._server_closed = server_closed
        self._connection = connection

    def is_set(self) -> bool:
        if self._server_closed.is_set():
            return True
        try:
            readable, _, _ = select.select([self._connection], [], [], 0)
        except (OSError, ValueError):
            return True  # the socket is already closed
        return bool(readable)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # an idle keep-alive connection is closed (its thread ends); clients reconnect
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # the peer went away; nothing to flush to

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("kube-apiserver %s: " + format, self.address_string(), *args)

    def _handle(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, split.path, query, headers, body, _Gone(self.server.closed, self.connection))
        if not self._authorized(headers):
            response = status_response(errors.Unauthorized())
        else:
            response = self.server.dispatch(request)
        self._send(response)

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.path.split("?")[0] in ("/healthz", "/livez", "/readyz", "/version"):
            return True  # anonymous health and version checks, as a default apiserver allows
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.token.encode())

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(response.body)  # headers and body in one write
            self.flush_headers()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for chunk in response.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            close = getattr(response.stream, "close", None)
            if close:
                close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 (stdlib naming)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, context: ssl.SSLContext, token: str, dispatch: Dispatch,
                 reserved: socket.socket | None = None):
        self.context = context
        self.token = token
        self.dispatch = dispatch
        self.connections: set[socket.socket] = set()
        self.closed = threading.Event()
        super().__init__(("127.0.0.1", port), _Handler, bind_and_activate=reserved is None)
        if reserved is not None:  # the port kept while closed: listen on that very socket
            self.socket.close()
            self.socket = reserved
            self.server_address = reserved.getsockname()
            self.server_activate()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay between small writes
        # the TLS handshake runs lazily in the connection's own thread, not in the accept loop
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("kube-apiserver connection from %s ended with an error", client_address, exc_info=True)


def _reserve(port: int) -> socket.socket:
    """A socket bound to ``port`` but not listening: connections to it are refused, as to a closed
    endpoint, and no other server (another cluster's API, an SSH host) can take the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class ApiServer:
    """Serves ``dispatch`` over HTTPS on 127.0.0.1; the port stays the same across close/reopen."""

    def __init__(self, context: ssl.SSLContext, token: str, dispatch: Dispatch):
        self._context = context
        self._token = token
        self._dispatch = dispatch
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._reserved: socket.socket | None = None  # holds the port while the endpoint is closed
        self.port = 0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._server is not None

    def open(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            server = _Server(self.port, self._context, self._token, self._dispatch, self._reserved)
            self._reserved = None
            self.port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"kube-apiserver-{self.port}", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop listening and drop every connection (clients get refused / reset)."""
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            server.closed.set()
            server.shutdown()
            server.server_close()
            for conn in list(server.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already gone
                conn.close()
            if self._thread:
                self._thread.join(timeout=5)
            self._reserved = _reserve(self.port)

    def release(self) -> None:
        """Stop for good: close the endpoint and give the port back."""
        self.close()
        with self._lock:
            if self._reserved is not None:
                self._reserved.close()
                self._reserved = None
