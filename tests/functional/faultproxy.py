# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""A fault-injecting HTTP reverse proxy, put between the tool and the
sandbox to prove how the tool behaves when the network and Nova misbehave.

:class:`FaultProxy` listens on a free port of 127.0.0.1 and forwards every
request to the sandbox (keep-alive towards the client, chunked or
``Content-Length`` request bodies; one fresh upstream connection per request,
so the proxy never re-sends anything itself). :class:`Fault` rules choose,
by method and path, a rate for each kind of fault:

``500``, ``502``, ``503``
    An error answer; the request is not forwarded.
``409``
    Nova's "Cannot '<action>' instance ... while it is in task_state
    migrating" answer; the request is not forwarded.
``reset-before``
    The connection is reset before forwarding: Nova never saw the request.
``reset-after``
    The request is forwarded and Nova answers, then the client's connection
    is reset instead of the answer: the ambiguous case.
``slow``
    Forwarded, and answered after :attr:`FaultProxy.slow_delay` seconds.

Whether the n-th request of a route (method, path with ids replaced, and
the action of a ``POST .../action``) is faulted, and how, depends only on
the seed, the route and n: the same run faults the same requests of each
route, whatever the order the threads send them in. ``/sandbox`` (the
control API) is never faulted. The proxy counts what it injected, and it
records every token the identity service issued through it.
"""

import collections
import dataclasses
import http.client
import http.server
import json
import os
import random
import re
import socket
import struct
import threading
import time
from typing import Any

import yaml

ERROR_500 = "500"
ERROR_502 = "502"
ERROR_503 = "503"
CONFLICT = "409"
RESET_BEFORE = "reset-before"
RESET_AFTER = "reset-after"
SLOW = "slow"
KINDS = (ERROR_500, ERROR_502, ERROR_503, CONFLICT, RESET_BEFORE,
         RESET_AFTER, SLOW)
#: The kinds after which the client cannot know whether Nova acted.
AMBIGUOUS = frozenset({ERROR_500, ERROR_502, ERROR_503, RESET_AFTER})

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
#: Compute and Placement, the APIs the tool works with.
API_PATHS = r"^/(compute|placement)/"
#: Never faulted: the sandbox's control API.
CONTROL_PREFIX = "/sandbox"
IDENTITY_PREFIX = "/identity"

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    "content-length",
})
_ID = re.compile(
    r"/(?:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"
    r"|[0-9]+)(?=/|$)")
_SERVER_ID = re.compile(r"/servers/([0-9a-f-]{36})")
_ERROR_BODIES = {
    ERROR_500: ("Internal Server Error", "application/json", json.dumps({
        "computeFault": {"code": 500, "message": "Unexpected API Error. "
                         "Please report this at http://bugs.launchpad.net/"
                         "nova/ and attach the Nova API log if possible."}})),
    ERROR_502: ("Bad Gateway", "text/html",
                "<html><body><h1>502 Bad Gateway</h1>\nThe server returned "
                "an invalid or incomplete response.\n</body></html>\n"),
    ERROR_503: ("Service Unavailable", "text/html",
                "<html><body><h1>503 Service Unavailable</h1>\nNo server is "
                "available to handle this request.\n</body></html>\n"),
}
_UPSTREAM_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True)
class Fault:
    """Inject ``kind`` into this share of the matching requests."""

    kind: str
    rate: float
    methods: frozenset[str] = ALL_METHODS
    #: A regular expression the request path must match (``re.search``).
    path: str = API_PATHS
    #: For ``POST .../action``: only these actions (None: any request).
    actions: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate {self.rate} is not within 0..1")

    def matches(self, method: str, path: str, action: str | None) -> bool:
        """Whether this rule applies to the request."""
        if method not in self.methods or not re.search(self.path, path):
            return False
        return self.actions is None or action in self.actions


def route_of(method: str, path: str, action: str | None) -> str:
    """The route of a request: ids and numbers replaced, action added."""
    route = f"{method} {_ID.sub('/{id}', path.split('?', 1)[0])}"
    return f"{route} {action}" if action else route


def action_of(method: str, path: str, body: bytes) -> str | None:
    """The action a ``POST .../action`` asks for (its body's only key)."""
    if method != "POST" or not path.split("?", 1)[0].endswith("/action"):
        return None
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return None
    if isinstance(document, dict) and len(document) == 1:
        return str(next(iter(document)))
    return None


class FaultProxy:
    """A reverse proxy on 127.0.0.1 in front of ``upstream_port``.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    Faults are injected only while :attr:`enabled` is true.
    """

    def __init__(
        self,
        upstream_port: int,
        faults: list[Fault] | tuple[Fault, ...] = (),
        seed: int = 0,
        slow_delay: float = 1.0,
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults = tuple(faults)
        self.seed = seed
        self.slow_delay = slow_delay
        self.enabled = True
        self._lock = threading.Lock()
        self._seen: collections.Counter[str] = collections.Counter()
        #: Faults injected, by ``(kind, method)``.
        self.injected: collections.Counter[tuple[str, str]] = (
            collections.Counter())
        #: Faults injected, by ``(kind, route)``.
        self.injected_routes: collections.Counter[tuple[str, str]] = (
            collections.Counter())
        #: Requests that reached the sandbox, by route.
        self.forwarded: collections.Counter[str] = collections.Counter()
        #: The sandbox's answers, by ``(route, status)``.
        self.answered: collections.Counter[tuple[str, int]] = (
            collections.Counter())
        #: Every token the identity service issued through this proxy.
        self.issued_tokens: list[str] = []
        self._clients: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        """Serve in a thread of its own."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and end the clients'
        connections (their threads end with them)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue

    def connected(self, client: socket.socket, opened: bool) -> None:
        """Keep track of the clients' connections."""
        with self._lock:
            if opened:
                self._clients.add(client)
            else:
                self._clients.discard(client)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- what the tests read -------------------------------------------

    def total_injected(self) -> int:
        """How many faults were injected."""
        with self._lock:
            return sum(self.injected.values())

    def requests_seen(self, prefix: str = "") -> int:
        """Requests received whose route starts with ``prefix``."""
        with self._lock:
            return sum(count for route, count in self._seen.items()
                       if route.split(" ", 1)[1].startswith(prefix))

    def summary(self) -> str:
        """The fault mix, as one line per kind, for the test's output."""
        lines = [f"fault proxy (seed {self.seed}): "
                 f"{self.total_injected()} faults in "
                 f"{self.requests_seen()} requests"]
        for kind in KINDS:
            by_method = {method: count for (k, method), count
                         in sorted(self.injected.items()) if k == kind}
            if by_method:
                lines.append(f"  {kind:<13} " + ", ".join(
                    f"{method} {count}" for method, count in
                    by_method.items()))
        return "\n".join(lines)

    def clouds_yaml(self, source: str, destination: str,
                    settings: dict[str, Any] | None = None) -> str:
        """Write a copy of the clouds.yaml ``source`` whose clouds reach
        the sandbox through this proxy: ``auth_url`` points at the proxy,
        and the compute and placement endpoints of the catalog are
        overridden with the proxy's; ``settings`` are added to every
        cloud."""
        with open(source, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
        base = f"http://{self.upstream[0]}:{self.upstream[1]}"
        for cloud in document["clouds"].values():
            cloud.update(settings or {})
            auth = cloud["auth"]
            auth["auth_url"] = auth["auth_url"].replace(base, self.url)
            cloud["compute_endpoint_override"] = (
                f"{self.url}/compute/v2.1")
            cloud["placement_endpoint_override"] = f"{self.url}/placement"
        # It holds passwords: readable by its owner only.
        descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT
                             | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8") as stream:
            yaml.safe_dump(document, stream, sort_keys=False)
        return destination

    # -- deciding ------------------------------------------------------

    def decide(self, method: str, path: str, action: str | None) -> str | None:
        """The fault to inject into this request, if any."""
        route = route_of(method, path, action)
        with self._lock:
            self._seen[route] += 1
            nth = self._seen[route]
        if not self.enabled or path.startswith(CONTROL_PREFIX):
            return None
        matching = [f for f in self.faults if f.matches(method, path, action)]
        if not matching:
            return None
        draw = random.Random(f"{self.seed}|{route}|{nth}").random()
        threshold = 0.0
        for fault in matching:
            threshold += fault.rate
            if draw < threshold:
                with self._lock:
                    self.injected[(fault.kind, method)] += 1
                    self.injected_routes[(fault.kind, route)] += 1
                return fault.kind
        return None

    def record(self, route: str, status: int,
               headers: http.client.HTTPMessage) -> None:
        """Count a forwarded request and its answer; keep a token it
        issued."""
        with self._lock:
            self.forwarded[route] += 1
            self.answered[(route, status)] += 1
            token = headers.get("X-Subject-Token")
            if token and status == 201:
                self.issued_tokens.append(token)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type,
                 proxy: FaultProxy) -> None:
        super().__init__(address, handler)
        self.proxy = proxy


class _Handler(http.server.BaseHTTPRequestHandler):
    """One client connection: its requests, one after the other."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the sandbox logs the requests it serves."""

    def setup(self) -> None:
        super().setup()
        self.server.proxy.connected(self.connection, True)

    def finish(self) -> None:
        self.server.proxy.connected(self.connection, False)
        super().finish()

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        action = action_of(self.command, self.path, body)
        fault = proxy.decide(self.command, self.path, action)
        if fault in _ERROR_BODIES:
            reason, content_type, text = _ERROR_BODIES[fault]
            self._answer(int(fault), reason, [("Content-Type", content_type)],
                         text.encode())
            return
        if fault == CONFLICT:
            self._answer(409, "Conflict",
                         [("Content-Type", "application/json")],
                         self._conflict_body(action))
            return
        if fault == RESET_BEFORE:
            self._reset()
            return
        status, reason, headers, answer = self._forward(body)
        proxy.record(route_of(self.command, self.path, action), status,
                     headers)
        if fault == RESET_AFTER:
            self._reset()
            return
        if fault == SLOW:
            time.sleep(proxy.slow_delay)
        if self.path.startswith(IDENTITY_PREFIX) and self.command == "GET":
            # Version discovery names the sandbox's own address: name the
            # proxy's, so that the token request comes through here too.
            host, port = proxy.upstream
            upstream = f"http://{host}:{port}"
            answer = answer.replace(upstream.encode(), proxy.url.encode())
        kept = [(name, value) for name, value in headers.items()
                if name.lower() not in _HOP_BY_HOP]
        self._answer(status, reason, kept, answer)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0], 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        continue
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(
        self, body: bytes
    ) -> tuple[int, str, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection(
            *self.server.proxy.upstream, timeout=_UPSTREAM_TIMEOUT)
        try:
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in _HOP_BY_HOP}
            headers["Connection"] = "close"
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body or None,
                               headers=headers)
            response = connection.getresponse()
            answer = response.read()
            return response.status, response.reason, response.msg, answer
        finally:
            connection.close()

    def _answer(self, status: int, reason: str,
                headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        if self.command == "HEAD" or status in (204, 304):
            body = b""
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def _conflict_body(self, action: str | None) -> bytes:
        found = _SERVER_ID.search(self.path)
        server = found.group(1) if found else "unknown"
        return json.dumps({"conflictingRequest": {
            "code": 409,
            "message": f"Cannot '{action or self.command}' instance {server}"
                       " while it is in task_state migrating"}}).encode()

    def _reset(self) -> None:
        """Abort the client's connection: it reads a TCP reset."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()
