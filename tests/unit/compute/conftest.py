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
"""Fixtures of the compute tests: a fake openstacksdk connection.

:class:`FakeConnection` stands for ``openstack.connection.Connection``: its
``compute`` and ``placement`` proxies record every request and answer from
routes the test sets up, the way a keystoneauth adapter called with
``raise_exc=False`` does (``requests.Response``-like objects, or the
keystoneauth exception a transport failure raises).
"""

import copy
import dataclasses
import json as jsonlib
from collections.abc import Callable
from typing import Any

import pytest

from nova_migrate_flows.compute import nova


class FakeResponse:
    """The part of ``requests.Response`` that NovaCompute reads."""

    def __init__(
        self,
        status_code: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        reason: str = "",
    ):
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.reason = reason
        self._body = body

    def json(self) -> Any:
        if self._body is None:
            raise jsonlib.JSONDecodeError("Expecting value", "", 0)
        return copy.deepcopy(self._body)


@dataclasses.dataclass(frozen=True)
class Sent:
    """One request a proxy received."""

    method: str
    url: str
    json: Any
    params: dict[str, Any] | None
    microversion: str | None
    raise_exc: bool
    #: Other keyword arguments (keystoneauth's retry settings).
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


Answer = FakeResponse | Exception | Callable[[Sent], FakeResponse]


class FakeProxy:
    """A service proxy: routes ``(method, url)`` to queued answers.

    The answers of a route are given in order; the last one repeats. An
    exception is raised; a callable is called with the request. A request
    to no route gets Nova's 404.
    """

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._routes: dict[tuple[str, str], list[Answer]] = {}

    def route(self, method: str, url: str, *answers: Answer) -> None:
        self._routes[(method, url)] = list(answers)

    def request(
        self,
        url: str,
        method: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        microversion: str | None = None,
        raise_exc: bool = True,
        **options: Any,
    ) -> FakeResponse:
        sent = Sent(method, url, copy.deepcopy(json), copy.deepcopy(params),
                    microversion, raise_exc, options)
        self.sent.append(sent)
        answers = self._routes.get((method, url))
        if not answers:
            return error(404, "itemNotFound", f"{url} could not be found.")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(sent)
        return answer

    def urls(self) -> list[str]:
        return [f"{s.method} {s.url}" for s in self.sent]


class FakeConnection:
    """``openstack.connection.Connection`` with recording proxies."""

    def __init__(self) -> None:
        self.compute = FakeProxy()
        self.placement = FakeProxy()


def ok(body: Any = None, status: int = 200, **headers: str) -> FakeResponse:
    return FakeResponse(status, body, headers, reason="OK")


def error(status: int, kind: str, message: str, **headers: str
          ) -> FakeResponse:
    """An error the way Nova words it: ``{kind: {message, code}}``."""
    return FakeResponse(
        status, {kind: {"message": message, "code": status}}, headers,
        reason="Error",
    )


def paged(key: str, items: list[dict[str, Any]], max_limit: int,
          marker_field: str = "id") -> Callable[[Sent], FakeResponse]:
    """A list Nova pages: at most ``max_limit`` (its ``[api] max_limit``)
    items a page, and a ``next`` link whenever a page is full."""

    def answer(sent: Sent) -> FakeResponse:
        params = sent.params or {}
        limit = min(int(params.get("limit") or max_limit), max_limit)
        start = 0
        if "marker" in params:
            markers = [item[marker_field] for item in items]
            start = markers.index(params["marker"]) + 1
        page = items[start:start + limit]
        body: dict[str, Any] = {key: page}
        if len(page) == limit:
            body[f"{key}_links"] = [{
                "rel": "next",
                "href": f"http://nova/{key}?marker={page[-1][marker_field]}",
            }]
        return ok(body)

    return answer


@pytest.fixture
def connection() -> FakeConnection:
    return FakeConnection()


@pytest.fixture
def sleeps() -> list[float]:
    """The delays NovaCompute slept, in order (it never really sleeps)."""
    return []


def version_document(maximum: str, minimum: str = "2.1") -> FakeResponse:
    """Nova's ``GET /v2.1/``."""
    return ok({"version": {"id": "v2.1", "status": "CURRENT",
                           "version": maximum, "min_version": minimum}})


@pytest.fixture
def compute(connection: FakeConnection, sleeps: list[float]
            ) -> nova.NovaCompute:
    """A NovaCompute that learnt the cloud's microversions (up to 2.96)
    already, as a run does first."""
    compute = nova.NovaCompute(connection, read_retries=3,
                               sleep=sleeps.append)
    connection.compute.route("GET", "/", version_document("2.96"))
    compute.api_versions()
    connection.compute.sent.clear()
    compute.request_counts.clear()
    return compute
