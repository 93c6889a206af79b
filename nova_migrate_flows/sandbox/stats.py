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
"""Counts of the API requests the sandbox served, by service and route.

A route is the method and the path with every id replaced by ``{id}``
(``GET /servers/{id}/migrations/{id}``); a server action also names the
action (``POST /servers/{id}/action os-migrateLive``). Benchmarks read the
counts to tell how many Nova API requests a tool made per migrated server.

Only the standard library is used.
"""

import collections
import datetime
import re
import threading
from typing import Any

_ID_SEGMENT = re.compile(
    r"^(?:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12}|\d+|req-[0-9a-fA-F-]{36})$"
)


def route(method: str, path: str, action: str | None = None) -> str:
    """``METHOD /path/{id}`` for a request, ids templated."""
    segments = [
        "{id}" if _ID_SEGMENT.match(segment) else segment
        for segment in path.split("/")
        if segment
    ]
    name = f"{method} /{'/'.join(segments)}"
    return f"{name} {action}" if action else name


class RequestStats:
    """Thread-safe request counters per service, since the last reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, collections.Counter[str]] = {}
        self._since = _now()

    def count(self, service: str, route_name: str) -> None:
        """Count one request to ``route_name`` of ``service``."""
        with self._lock:
            self._counts.setdefault(service, collections.Counter())[
                route_name] += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"since": iso, "services": {svc: {"total", "requests"}}}``."""
        with self._lock:
            return self._document()

    def reset(self) -> dict[str, Any]:
        """Start counting from zero; answer the counts until now."""
        with self._lock:
            before = self._document()
            self._counts = {}
            self._since = _now()
        return before

    def _document(self) -> dict[str, Any]:
        services = {
            service: {
                "total": sum(counter.values()),
                "requests": dict(sorted(counter.items())),
            }
            for service, counter in sorted(self._counts.items())
        }
        return {"since": self._since, "services": services}


def _now() -> str:
    # The server may run on Python 3.10, which has no datetime.UTC.
    utc = datetime.timezone.utc  # noqa: UP017
    return datetime.datetime.now(utc).isoformat()
