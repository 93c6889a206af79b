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
"""A minimal Keystone v3: enough for keystoneauth's password and
application-credential plugins.

It issues project-scoped tokens with a service catalog
(``POST /v3/auth/tokens``), answers version discovery (``GET /`` and
``GET /v3``) and validates tokens for the gateway. Users, passwords and the
application credential are made up at start; tokens live in memory for a
configurable time.

Only the standard library is used.
"""

import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from nova_migrate_flows.sandbox import constants

LOG = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

_VERSION = {
    "id": "v3.14",
    "status": "stable",
    "updated": "2020-04-07T00:00:00Z",
    "media-types": [{
        "base": "application/json",
        "type": "application/vnd.openstack.identity-v3+json",
    }],
}
_UNAUTHORIZED = "The request you have made requires authentication."


@dataclasses.dataclass(frozen=True)
class Project:
    """A project in the ``Default`` domain."""

    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class User:
    """A user with a password, one project and that project's roles."""

    id: str
    name: str
    password: str = dataclasses.field(repr=False)
    project: Project
    roles: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ApplicationCredential:
    """An application credential of a user, on the user's project."""

    id: str
    name: str
    secret: str = dataclasses.field(repr=False)
    user: User


@dataclasses.dataclass(frozen=True)
class Token:
    """An issued token: who it speaks for, and until when."""

    user: User
    expires_at: float
    methods: tuple[str, ...]
    app_credential: ApplicationCredential | None = None

    def expired(self, now: float | None = None) -> bool:
        """Whether the token is past its expiry."""
        return (time.time() if now is None else now) >= self.expires_at


class AuthError(Exception):
    """A token request that Keystone would refuse."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def make_users() -> tuple[User, User, ApplicationCredential]:
    """The admin and demo users with random passwords, and an application
    credential of admin with a random secret."""
    admin = User(
        id=uuid.uuid4().hex, name=constants.ADMIN_USER,
        password=secrets.token_urlsafe(16),
        project=Project(uuid.uuid4().hex, constants.ADMIN_PROJECT),
        roles=constants.ADMIN_ROLES,
    )
    demo = User(
        id=uuid.uuid4().hex, name=constants.DEMO_USER,
        password=secrets.token_urlsafe(16),
        project=Project(uuid.uuid4().hex, constants.DEMO_PROJECT),
        roles=constants.MEMBER_ROLES,
    )
    app_credential = ApplicationCredential(
        id=uuid.uuid4().hex, name=constants.APP_CREDENTIAL_NAME,
        secret=secrets.token_urlsafe(24), user=admin,
    )
    return admin, demo, app_credential


def token_digest(token_id: str) -> str:
    """A short, one-way name of a token, fit for logs."""
    return hashlib.sha256(token_id.encode()).hexdigest()[:10]


class TokenStore:
    """The users, the application credentials and the issued tokens."""

    def __init__(
        self,
        users: Iterable[User],
        app_credentials: Iterable[ApplicationCredential],
        token_ttl: float,
    ) -> None:
        self.users = {user.name: user for user in users}
        self.app_credentials = {ac.id: ac for ac in app_credentials}
        self.token_ttl = token_ttl
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def issue(self, auth: dict[str, Any]) -> tuple[str, Token]:
        """Check the ``auth`` object of a token request; issue a token."""
        identity = auth.get("identity")
        if not isinstance(identity, dict):
            raise AuthError(400, "Bad Request", "Expecting auth.identity.")
        methods = identity.get("methods")
        if methods == ["password"]:
            user = self._password_user(identity.get("password"))
            self._check_scope(user, auth.get("scope"))
            app_credential = None
        elif methods == ["application_credential"]:
            app_credential = self._app_credential(
                identity.get("application_credential"))
            user = app_credential.user
        else:
            raise AuthError(401, "Unauthorized",
                            f"Unsupported auth methods: {methods}")
        token_id = secrets.token_urlsafe(32)
        now = time.time()
        token = Token(user=user, expires_at=now + self.token_ttl,
                      methods=tuple(methods), app_credential=app_credential)
        with self._lock:
            self._tokens = {key: value for key, value in self._tokens.items()
                            if not value.expired(now)}
            self._tokens[token_id] = token
        LOG.info("Issued token %s to %s (%s)", token_digest(token_id),
                 user.name, methods[0])
        return token_id, token

    def validate(self, token_id: str) -> Token | None:
        """The token, if it was issued and is not expired nor revoked."""
        with self._lock:
            token = self._tokens.get(token_id)
        if token is None or token.expired():
            return None
        return token

    def revoke_all(self) -> int:
        """Forget every issued token; answer how many there were."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        LOG.info("Revoked %d tokens", count)
        return count

    def _password_user(self, password: Any) -> User:
        user_ref = (password or {}).get("user") or {}
        user = None
        if "id" in user_ref:
            user = next((u for u in self.users.values()
                         if u.id == user_ref["id"]), None)
        elif "name" in user_ref:
            _check_domain(user_ref.get("domain"))
            user = self.users.get(user_ref["name"])
        given = str(user_ref.get("password", ""))
        if user is None or not hmac.compare_digest(given, user.password):
            raise AuthError(401, "Unauthorized", _UNAUTHORIZED)
        return user

    @staticmethod
    def _check_scope(user: User, scope: Any) -> None:
        """Only the user's own project can be the scope (or none)."""
        if not scope:
            return
        project = scope.get("project") if isinstance(scope, dict) else None
        if not isinstance(project, dict):
            raise AuthError(401, "Unauthorized",
                            "Only project scope is supported.")
        if "id" in project:
            ok = project["id"] == user.project.id
        else:
            _check_domain(project.get("domain"))
            ok = project.get("name") == user.project.name
        if not ok:
            raise AuthError(401, "Unauthorized",
                            f"User {user.name} has no role on that project.")

    def _app_credential(self, ref: Any) -> ApplicationCredential:
        ref = ref or {}
        credential = None
        if "id" in ref:
            credential = self.app_credentials.get(ref["id"])
        elif "name" in ref:
            user_ref = ref.get("user") or {}
            credential = next(
                (ac for ac in self.app_credentials.values()
                 if ac.name == ref["name"]
                 and user_ref.get("id", ac.user.id) == ac.user.id
                 and user_ref.get("name", ac.user.name) == ac.user.name),
                None)
        given = str(ref.get("secret", ""))
        if credential is None or not hmac.compare_digest(
                given, credential.secret):
            raise AuthError(401, "Unauthorized", _UNAUTHORIZED)
        return credential


def _check_domain(domain: Any) -> None:
    if domain and domain.get("id", constants.DOMAIN_ID) != constants.DOMAIN_ID:
        raise AuthError(401, "Unauthorized", _UNAUTHORIZED)
    if domain and domain.get("name", constants.DOMAIN_NAME) != (
            constants.DOMAIN_NAME):
        raise AuthError(401, "Unauthorized", _UNAUTHORIZED)


def _iso(timestamp: float) -> str:
    # The server may run on Python 3.10, which has no datetime.UTC.
    moment = datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc)  # noqa: UP017
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(status: int, title: str, message: str) -> bytes:
    """A Keystone-style error document."""
    return json.dumps({"error": {
        "code": status, "title": title, "message": message}}).encode()


class IdentityApp:
    """The WSGI application of the minimal Keystone, mounted at a prefix.

    :param store: the users and tokens
    :param catalog: ``{service_type: url}`` of the services to list
    """

    def __init__(self, store: TokenStore, catalog: dict[str, str],
                 base_url: str) -> None:
        self.store = store
        self.catalog = catalog
        self.base_url = base_url.rstrip("/")

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "").rstrip("/")
        method = environ["REQUEST_METHOD"]
        if path == "" and method == "GET":
            body = {"versions": {"values": [self._version()]}}
            return _json(start_response, "300 Multiple Choices", body)
        if path == "/v3" and method == "GET":
            return _json(start_response, "200 OK",
                         {"version": self._version()})
        if path == "/v3/auth/tokens" and method == "POST":
            return self._issue(environ, start_response)
        return _json(start_response, "404 Not Found", None,
                     error_body(404, "Not Found", "Not found."))

    def _version(self) -> dict[str, Any]:
        version = dict(_VERSION)
        version["links"] = [{"rel": "self", "href": self.base_url + "/v3/"}]
        return version

    def _issue(self, environ: dict[str, Any],
               start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            auth = request.get("auth")
            if not isinstance(auth, dict):
                raise AuthError(400, "Bad Request", "Expecting auth.")
            token_id, token = self.store.issue(auth)
        except ValueError:
            error = AuthError(400, "Bad Request", "Malformed JSON.")
            return _error(start_response, error)
        except AuthError as error:
            return _error(start_response, error)
        return _json(start_response, "201 Created",
                     {"token": self.token_body(token)},
                     headers=[("X-Subject-Token", token_id)])

    def token_body(self, token: Token) -> dict[str, Any]:
        """The ``token`` document Keystone answers with."""
        user = token.user
        domain = {"id": constants.DOMAIN_ID, "name": constants.DOMAIN_NAME}
        body: dict[str, Any] = {
            "methods": list(token.methods),
            "user": {"id": user.id, "name": user.name, "domain": domain,
                     "password_expires_at": None},
            "audit_ids": [secrets.token_urlsafe(16)],
            "issued_at": _iso(time.time()),
            "expires_at": _iso(token.expires_at),
            "project": {"id": user.project.id, "name": user.project.name,
                        "domain": domain},
            "is_domain": False,
            "roles": [{"id": hashlib.md5(role.encode(),
                                         usedforsecurity=False).hexdigest(),
                       "name": role} for role in user.roles],
            "catalog": self._catalog(),
        }
        if token.app_credential is not None:
            body["application_credential"] = {
                "id": token.app_credential.id,
                "name": token.app_credential.name,
                "restricted": True,
            }
        return body

    def _catalog(self) -> list[dict[str, Any]]:
        entries = []
        for service_type, url in sorted(self.catalog.items()):
            entries.append({
                "type": service_type,
                "name": service_type,
                "id": hashlib.md5(service_type.encode(),
                                  usedforsecurity=False).hexdigest(),
                "endpoints": [{
                    "id": hashlib.md5((service_type + interface).encode(),
                                      usedforsecurity=False).hexdigest(),
                    "interface": interface,
                    "region": constants.REGION,
                    "region_id": constants.REGION,
                    "url": url,
                } for interface in ("public", "internal", "admin")],
            })
        return entries


def _error(start_response: StartResponse,
           error: AuthError) -> Iterable[bytes]:
    status = f"{error.status} {error.title}"
    return _json(start_response, status, None,
                 error_body(error.status, error.title, error.message))


def _json(start_response: StartResponse, status: str, document: Any,
          raw: bytes | None = None,
          headers: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    body = raw if raw is not None else json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))]
                   + (headers or []))
    return [body]
