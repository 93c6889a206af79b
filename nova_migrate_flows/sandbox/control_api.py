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
"""The sandbox's JSON control API, served under ``/sandbox``.

``GET /health`` and ``GET /ready`` are open; every other call needs the
control secret of ``sandbox.json`` in the ``X-Sandbox-Secret`` header
(not a Keystone token: revoking every token must not lock the control API
out).

=======  ============================  ======================================
Method   Path                          What it does
=======  ============================  ======================================
GET      /health                       ``{"status": "ok"}`` once serving
GET      /ready                        200 when every compute is up and has
                                       its resource provider, else 503
GET      /status                       hosts, flavors, image, defaults
GET      /defaults                     the driver's sandbox-wide defaults
PUT      /defaults                     change them (any subset)
PUT      /hosts/{host}/capacity        ``vcpus``, ``memory_mb``, ``disk_gb``
POST     /hosts/{host}/stop            stop that nova-compute service
POST     /hosts/{host}/start           start it again
GET      /stats                        API request counts since the reset
POST     /stats/reset                  answer the counts, start from zero
PUT      /identity                     ``{"token_ttl": seconds}``
POST     /identity/revoke              forget every issued token
POST     /shutdown                     stop the sandbox
=======  ============================  ======================================

Only the standard library is used; the cloud is reached through the
:class:`Backend` protocol.
"""

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from nova_migrate_flows.sandbox import constants, identity
from nova_migrate_flows.sandbox import stats as request_stats

LOG = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class UnknownHost(LookupError):
    """No compute host of that name."""


class BadRequest(ValueError):
    """The request body asks for something invalid."""


class Starting(RuntimeError):
    """The cloud is still being built."""


class Backend(Protocol):
    """What the control API asks of the cloud."""

    def ready(self) -> tuple[bool, list[str]]:
        """Whether the cloud is ready, and what it still waits for."""

    def status(self) -> dict[str, Any]:
        """The hosts, flavors, image, network and driver defaults."""

    def defaults(self) -> dict[str, Any]:
        """The driver's sandbox-wide defaults."""

    def set_defaults(self, **values: Any) -> dict[str, Any]:
        """Change some defaults; answer all of them."""

    def set_capacity(self, host: str, vcpus: int | None = None,
                     memory_mb: int | None = None,
                     local_gb: int | None = None) -> dict[str, int]:
        """Change a host's capacity (raises UnknownHost)."""

    def stop_compute(self, host: str) -> bool:
        """Stop a compute service; False if it was stopped already."""

    def start_compute(self, host: str) -> bool:
        """Start a compute service; False if it was running already."""


class ControlApp:
    """The WSGI application of the control API.

    :param backend: the cloud, or None while it is being built
    :param shutdown: called (from a request thread) to stop the sandbox
    """

    def __init__(self, secret: str, store: identity.TokenStore,
                 stats: request_stats.RequestStats,
                 shutdown: Callable[[], None]) -> None:
        self.backend: Backend | None = None
        self._secret = secret
        self._store = store
        self._stats = stats
        self._shutdown = shutdown
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("GET", re.compile(r"/status"), self._status),
            ("GET", re.compile(r"/defaults"), self._defaults),
            ("PUT", re.compile(r"/defaults"), self._set_defaults),
            ("PUT", re.compile(r"/hosts/(?P<host>[^/]+)/capacity"),
             self._set_capacity),
            ("POST", re.compile(r"/hosts/(?P<host>[^/]+)/stop"),
             self._stop_compute),
            ("POST", re.compile(r"/hosts/(?P<host>[^/]+)/start"),
             self._start_compute),
            ("GET", re.compile(r"/stats"), self._get_stats),
            ("POST", re.compile(r"/stats/reset"), self._reset_stats),
            ("PUT", re.compile(r"/identity"), self._set_identity),
            ("POST", re.compile(r"/identity/revoke"), self._revoke),
            ("POST", re.compile(r"/shutdown"), self._shut_down),
        ]

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "").rstrip("/")
        if method == "GET" and path == "/health":
            return _json(start_response, 200, {"status": "ok"})
        if method == "GET" and path == "/ready":
            return self._ready(start_response)
        given = environ.get("HTTP_" + constants.CONTROL_SECRET_HEADER.upper()
                            .replace("-", "_"), "")
        if not hmac.compare_digest(given, self._secret):
            return _json(start_response, 401,
                         {"error": "Missing or wrong control secret."})
        matched_path = False
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            matched_path = True
            if route_method == method:
                return self._call(handler, match.groupdict(), environ,
                                  start_response)
        if matched_path:
            return _json(start_response, 405, {"error": "Method not allowed."})
        return _json(start_response, 404, {"error": f"No route {path}."})

    def _call(self, handler: Callable[..., Any], params: dict[str, str],
              environ: dict[str, Any],
              start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = _read_json(environ)
            status, document = handler(body, **params)
        except BadRequest as error:
            return _json(start_response, 400, {"error": str(error)})
        except UnknownHost as error:
            return _json(start_response, 404,
                         {"error": f"No compute host {error}."})
        except Starting as error:
            return _json(start_response, 503, {"error": str(error)})
        return _json(start_response, status, document)

    def _cloud(self) -> Backend:
        if self.backend is None:
            raise Starting("The sandbox cloud is still starting.")
        return self.backend

    def _ready(self, start_response: StartResponse) -> Iterable[bytes]:
        if self.backend is None:
            ready, waiting = False, ["the cloud"]
        else:
            ready, waiting = self.backend.ready()
        return _json(start_response, 200 if ready else 503,
                     {"ready": ready, "waiting_for": waiting})

    def _status(self, body: Any) -> tuple[int, Any]:
        return 200, self._cloud().status()

    def _defaults(self, body: Any) -> tuple[int, Any]:
        return 200, self._cloud().defaults()

    def _set_defaults(self, body: Any) -> tuple[int, Any]:
        values = _object(body)
        unknown = set(values) - {"live_migration_duration",
                                 "live_migration_result",
                                 "cold_migration_delay"}
        if unknown:
            raise BadRequest(f"Unknown defaults: {sorted(unknown)}.")
        for key in ("live_migration_duration", "cold_migration_delay"):
            if key in values:
                values[key] = _number(values, key, minimum=0.0)
        result = values.get("live_migration_result")
        if result is not None and result not in (
                constants.LIVE_MIGRATION_RESULTS):
            raise BadRequest(
                "live_migration_result must be one of "
                f"{', '.join(constants.LIVE_MIGRATION_RESULTS)}.")
        LOG.info("Setting driver defaults %s", values)
        return 200, self._cloud().set_defaults(**values)

    def _set_capacity(self, body: Any, host: str) -> tuple[int, Any]:
        values = _object(body)
        unknown = set(values) - {"vcpus", "memory_mb", "disk_gb"}
        if unknown or not values:
            raise BadRequest("Give any of vcpus, memory_mb, disk_gb.")
        sizes = {key: int(_number(values, key, minimum=1.0, integer=True))
                 for key in values}
        LOG.info("Setting the capacity of %s to %s", host, sizes)
        capacity = self._cloud().set_capacity(
            host, vcpus=sizes.get("vcpus"), memory_mb=sizes.get("memory_mb"),
            local_gb=sizes.get("disk_gb"))
        return 200, {"host": host, "capacity": capacity}

    def _stop_compute(self, body: Any, host: str) -> tuple[int, Any]:
        changed = self._cloud().stop_compute(host)
        return 200, {"host": host, "running": False, "changed": changed}

    def _start_compute(self, body: Any, host: str) -> tuple[int, Any]:
        changed = self._cloud().start_compute(host)
        return 200, {"host": host, "running": True, "changed": changed}

    def _get_stats(self, body: Any) -> tuple[int, Any]:
        return 200, self._stats.snapshot()

    def _reset_stats(self, body: Any) -> tuple[int, Any]:
        return 200, self._stats.reset()

    def _set_identity(self, body: Any) -> tuple[int, Any]:
        values = _object(body)
        if set(values) != {"token_ttl"}:
            raise BadRequest("Give token_ttl (seconds).")
        self._store.token_ttl = _number(values, "token_ttl", minimum=1.0)
        LOG.info("Tokens now live %.0f s", self._store.token_ttl)
        return 200, {"token_ttl": self._store.token_ttl}

    def _revoke(self, body: Any) -> tuple[int, Any]:
        return 200, {"revoked": self._store.revoke_all()}

    def _shut_down(self, body: Any) -> tuple[int, Any]:
        LOG.info("Shutdown asked through the control API")
        self._shutdown()
        return 202, {"status": "stopping"}


def _read_json(environ: dict[str, Any]) -> Any:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        return None
    try:
        return json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        raise BadRequest("The body is not JSON.") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return dict(body)


def _number(values: dict[str, Any], key: str, minimum: float,
            integer: bool = False) -> float:
    value = values[key]
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or (
            value < minimum):
        kind = "an integer" if integer else "a number"
        raise BadRequest(f"{key} must be {kind} >= {minimum:g}.")
    return float(value)


def _json(start_response: StartResponse, status: int,
          document: Any) -> Iterable[bytes]:
    reasons = {200: "OK", 202: "Accepted", 400: "Bad Request",
               401: "Unauthorized", 404: "Not Found",
               405: "Method Not Allowed", 503: "Service Unavailable"}
    body = json.dumps(document).encode()
    start_response(f"{status} {reasons[status]}",
                   [("Content-Type", "application/json"),
                    ("Content-Length", str(len(body)))])
    return [body]
