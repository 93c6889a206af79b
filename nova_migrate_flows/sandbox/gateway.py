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
"""The one WSGI application the sandbox serves: routing, auth and counting.

``/compute`` goes to Nova's API, ``/placement`` to Placement, ``/identity``
to the minimal Keystone and ``/sandbox`` to the control API. In front of
Nova and Placement the gateway does what keystonemiddleware's auth_token
does in a real cloud: it drops identity headers a client sent, validates
``X-Auth-Token`` and, for a valid token, sets the headers the services
build their request context from; a missing, unknown or expired token gets
a 401 with a Keystone-like body, except for version discovery, which needs
no token (as in Nova's and Placement's own pipelines).

Only the standard library is used.
"""

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from nova_migrate_flows.sandbox import constants, identity
from nova_migrate_flows.sandbox import stats as request_stats

LOG = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The identity headers keystonemiddleware sets, and so removes first.
_IDENTITY_HEADERS = (
    "HTTP_X_IDENTITY_STATUS", "HTTP_X_SERVICE_IDENTITY_STATUS",
    "HTTP_X_DOMAIN_ID", "HTTP_X_DOMAIN_NAME",
    "HTTP_X_PROJECT_ID", "HTTP_X_PROJECT_NAME",
    "HTTP_X_PROJECT_DOMAIN_ID", "HTTP_X_PROJECT_DOMAIN_NAME",
    "HTTP_X_USER_ID", "HTTP_X_USER_NAME",
    "HTTP_X_USER_DOMAIN_ID", "HTTP_X_USER_DOMAIN_NAME",
    "HTTP_X_ROLES", "HTTP_X_ROLE", "HTTP_X_SERVICE_CATALOG",
    "HTTP_X_IS_ADMIN_PROJECT", "HTTP_X_SYSTEM_SCOPE",
    "HTTP_OPENSTACK_SYSTEM_SCOPE", "HTTP_X_TENANT_ID", "HTTP_X_TENANT_NAME",
    "HTTP_X_TENANT", "HTTP_X_USER", "HTTP_X_AUTH_USER",
    "HTTP_X_AUTH_PROJECT_ID", "HTTP_X_APPLICATION_CREDENTIAL_ID",
)
_UNAVAILABLE = b'{"error": "The sandbox cloud is still starting."}'
_UNAUTHORIZED = identity.error_body(
    401, "Unauthorized", "The request you have made requires authentication.")
#: Paths (under the service's prefix) of the version documents.
_DISCOVERY_PATHS = {
    "compute": {"/", "/v2", "/v2/", constants.COMPUTE_VERSION_PATH,
                constants.COMPUTE_VERSION_PATH + "/"},
    "placement": {"/"},
}


class Gateway:
    """Route requests by prefix; authenticate and count the API requests.

    The Nova and Placement applications are set once the cloud is built
    (:meth:`attach_cloud`); until then they answer 503.
    """

    def __init__(
        self,
        identity_app: identity.IdentityApp,
        control_app: WSGIApp,
        stats: request_stats.RequestStats,
        identity_url: str,
    ) -> None:
        self.identity_app = identity_app
        self.control_app = control_app
        self.stats = stats
        self._compute_app: WSGIApp | None = None
        self._placement_app: WSGIApp | None = None
        self._www_authenticate = f'Keystone uri="{identity_url}"'

    def attach_cloud(self, compute_app: WSGIApp,
                     placement_app: WSGIApp) -> None:
        """Start serving Nova's and Placement's applications."""
        self._compute_app = compute_app
        self._placement_app = placement_app

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, service in (
            (constants.PREFIX_COMPUTE, "compute"),
            (constants.PREFIX_PLACEMENT, "placement"),
            (constants.PREFIX_IDENTITY, "identity"),
            (constants.PREFIX_CONTROL, "sandbox"),
        ):
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = (
                    environ.get("SCRIPT_NAME", "") + prefix)
                # "/placement" is the same document as "/placement/".
                environ["PATH_INFO"] = path[len(prefix):] or "/"
                return self._dispatch(service, environ, start_response)
        return _respond(start_response, "404 Not Found",
                        b'{"error": "Not found."}')

    def _dispatch(self, service: str, environ: dict[str, Any],
                  start_response: Callable[..., Any]) -> Iterable[bytes]:
        if service == "sandbox":
            return self.control_app(environ, start_response)
        if service == "identity":
            self._count(service, environ)
            return self.identity_app(environ, start_response)
        app = (self._compute_app if service == "compute"
               else self._placement_app)
        if app is None:
            return _respond(start_response, "503 Service Unavailable",
                            _UNAVAILABLE)
        denied = self._authenticate(service, environ)
        if denied is not None:
            return _respond(start_response, "401 Unauthorized", denied,
                            [("WWW-Authenticate", self._www_authenticate)])
        # Counted once past the token check: what the service processed.
        self._count(service, environ)
        return app(environ, start_response)

    def _authenticate(self, service: str,
                      environ: dict[str, Any]) -> bytes | None:
        """Set the identity headers for a valid token.

        Answer the 401 body for a token that is missing (outside version
        discovery), unknown or expired; None otherwise.
        """
        for header in _IDENTITY_HEADERS:
            environ.pop(header, None)
        token_id = environ.get("HTTP_X_AUTH_TOKEN")
        if token_id is None:
            if environ["PATH_INFO"] in _DISCOVERY_PATHS[service]:
                return None
            return _UNAUTHORIZED
        token = self.identity_app.store.validate(token_id)
        if token is None:
            LOG.info("Refused token %s: unknown or expired",
                     identity.token_digest(token_id))
            return _UNAUTHORIZED
        user = token.user
        environ.update({
            "HTTP_X_IDENTITY_STATUS": "Confirmed",
            "HTTP_X_USER_ID": user.id,
            "HTTP_X_USER_NAME": user.name,
            "HTTP_X_USER_DOMAIN_ID": constants.DOMAIN_ID,
            "HTTP_X_USER_DOMAIN_NAME": constants.DOMAIN_NAME,
            "HTTP_X_PROJECT_ID": user.project.id,
            "HTTP_X_PROJECT_NAME": user.project.name,
            "HTTP_X_PROJECT_DOMAIN_ID": constants.DOMAIN_ID,
            "HTTP_X_PROJECT_DOMAIN_NAME": constants.DOMAIN_NAME,
            "HTTP_X_ROLES": ",".join(user.roles),
        })
        if service == "placement":
            # Placement runs its noauth2 pipeline, which reads the user and
            # project from the token itself.
            environ["HTTP_X_AUTH_TOKEN"] = f"{user.id}:{user.project.id}"
        return None

    def _count(self, service: str, environ: dict[str, Any]) -> None:
        path = environ["PATH_INFO"]
        method = environ["REQUEST_METHOD"]
        if service == "compute" and path.startswith(
                constants.COMPUTE_VERSION_PATH + "/"):
            path = path[len(constants.COMPUTE_VERSION_PATH):]
        action = None
        if method == "POST" and path.rstrip("/").endswith("/action"):
            action = _action_name(environ)
        self.stats.count(service, request_stats.route(method, path, action))


def _action_name(environ: dict[str, Any]) -> str | None:
    """The action a ``POST .../action`` asks for; the body is kept."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict) and len(document) == 1:
        return str(next(iter(document)))
    return None


def _respond(start_response: Callable[..., Any], status: str, body: bytes,
             headers: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))]
                   + (headers or []))
    return [body]
