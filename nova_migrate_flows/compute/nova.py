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
"""The compute interface over openstacksdk, against a real Nova.

Requests go through the SDK's service proxies (keystoneauth adapters) with
an explicit microversion each, so every request and every field the flows
rely on is visible here. Reads are retried with backoff and jitter within a
bounded budget; writes are never repeated here, nor by keystoneauth
(whatever connect or status-code retries a cloud configures): an ambiguous
failure is raised as :class:`~nova_migrate_flows.exceptions.AmbiguousWrite`
for the caller to look at Nova before acting again.
"""

import collections
import concurrent.futures
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from oslo_log import log as logging

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import base, models
from nova_migrate_flows.compute import microversions as mv

LOG = logging.getLogger(__name__)

PLACEMENT_MV = "1.14"
#: Placement reads of :meth:`NovaCompute.host_capacities` sent at once.
PLACEMENT_READERS = 8

_RETRIABLE_STATUS = frozenset({500, 502, 503, 504})
_PAGE_LIMIT = 1000


class NovaCompute:
    """:class:`~nova_migrate_flows.compute.base.Compute` for a real Nova."""

    def __init__(
        self,
        connection: Any,
        *,
        read_retries: int = 5,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        target: dict[str, Any] | None = None,
    ):
        self._conn = connection
        self._target = dict(target or {})
        self._read_retries = read_retries
        self._backoff = retry_backoff
        self._backoff_max = retry_backoff_max
        self._sleep = sleep
        self._lock = threading.Lock()
        self._versions: tuple[str, str] | None = None
        self._versions_read: concurrent.futures.Future[
            tuple[str, str]] | None = None
        #: The compute services :meth:`prefetch` read, for the first
        #: :meth:`list_services` (every later one reads Nova again).
        self._services_read: concurrent.futures.Future[
            list[models.Service]] | None = None
        #: Requests sent, by ``"METHOD service"``: for summaries and tests.
        self.request_counts: collections.Counter[str] = collections.Counter()

    def close(self) -> None:
        """Close the SDK connection (its HTTP sessions)."""
        self._conn.close()

    def target(self) -> dict[str, Any]:
        """The cloud as configured, and the compute endpoint the requests
        go to (known without a request once one was sent)."""
        try:
            endpoint = self._conn.compute.get_endpoint()
        except ks_exc.ClientException as exc:
            endpoint = f"unknown ({_first_line(exc)})"
        return {**self._target, "compute_endpoint": endpoint}

    # -- microversions ------------------------------------------------------

    def api_versions(self) -> tuple[str, str]:
        """The compute API's minimum and maximum microversions, read once
        from its version document (or the read :meth:`prefetch` started:
        its answer, or its error)."""
        with self._lock:
            known, reading = self._versions, self._versions_read
        if known is not None:
            return known
        if reading is not None:
            return reading.result()
        return self._read_versions()

    def prefetch(self) -> None:
        """Start authenticating, reading the version document and then the
        compute services in a thread of its own, while the caller goes on
        (with imports, say): the first requests reach Nova sooner."""
        with self._lock:
            if self._versions is not None or self._versions_read is not None:
                return
            reading = self._versions_read = concurrent.futures.Future()
            services = self._services_read = concurrent.futures.Future()

        def read() -> None:
            try:
                reading.set_result(self._read_versions())
            except BaseException as exc:  # noqa: BLE001 - api_versions raises it
                reading.set_exception(exc)
                services.set_exception(exc)
                return
            try:
                services.set_result(self._read_services())
            except BaseException as exc:  # noqa: BLE001 - list_services raises it
                services.set_exception(exc)

        threading.Thread(target=read, name="nmf-prefetch",
                         daemon=True).start()

    def _read_versions(self) -> tuple[str, str]:
        document = self._call("GET", "/", microversion=None).json()
        version = document.get("version") or {}
        known = (version.get("min_version") or "2.1",
                 version.get("version") or "2.1")
        with self._lock:
            self._versions = known
        return known

    def _mv(self, call: mv.Call) -> str:
        """The microversion to send ``call`` at: its newest where every
        supported cloud has it, otherwise negotiated with the cloud."""
        if mv.supports(mv.OLDEST_SUPPORTED, call.newest):
            return call.newest
        try:
            return mv.negotiate(call, self.api_versions()[1])
        except mv.TooOld as exc:
            raise exceptions.Unsupported(str(exc)) from None

    # -- transport ---------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        microversion: str | None,
        service: str = "compute",
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        idempotent = method == "GET"
        # keystoneauth would resend a write after a reset connection or a
        # 503 if the cloud's configuration asks it to retry.
        once = {} if idempotent else {"connect_retries": 0,
                                      "status_code_retries": 0}
        attempt = 0
        resent_after_401 = False
        while True:
            with self._lock:
                self.request_counts[f"{method} {service}"] += 1
            try:
                # The first use of a proxy authenticates and discovers the
                # service's endpoint: its errors are the same as a request's.
                proxy = getattr(self._conn, service)
                response = proxy.request(
                    url,
                    method,
                    json=json,
                    params=params,
                    microversion=microversion,
                    raise_exc=False,
                    **once,
                )
            except (ks_exc.Unauthorized, ks_exc.AuthorizationFailure) as exc:
                raise exceptions.AuthenticationFailed(
                    f"authentication failed: {_first_line(exc)}; check the "
                    "credentials in the [nova] options or clouds.yaml"
                ) from exc
            except ks_exc.Forbidden as exc:
                raise exceptions.NotAuthorized(
                    f"not authorised: {_first_line(exc)}"
                ) from exc
            except ks_exc.EndpointNotFound as exc:
                raise exceptions.NovaUnavailable(
                    f"no {service} endpoint in the service catalog: "
                    f"{_first_line(exc)}"
                ) from exc
            except ks_exc.DiscoveryFailure as exc:
                raise exceptions.NovaUnavailable(
                    f"cannot reach the identity service or {service}: "
                    f"{_first_line(exc)}"
                ) from exc
            except ks_exc.SSLError as exc:
                raise exceptions.NovaUnavailable(
                    f"TLS error talking to {service}: {_first_line(exc)}; "
                    "check [nova] cafile (or insecure)"
                ) from exc
            except ks_exc.ConnectionError as exc:
                if not idempotent:
                    raise exceptions.AmbiguousWrite(
                        f"{method} {url}: {_first_line(exc)}"
                    ) from exc
                if attempt >= self._read_retries:
                    raise exceptions.NovaUnavailable(
                        f"cannot reach {service} ({method} {url}): "
                        f"{_first_line(exc)}"
                    ) from exc
                LOG.debug("Retrying %s %s after %s", method, url, exc)
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 401 and not resent_after_401:
                    # keystoneauth fetches a new token after a 401 and sends
                    # the request again, but only if its own token was still
                    # set: when two requests meet a revoked token at once,
                    # the second finds it cleared by the first and gives up.
                    # A 401 is the gateway's refusal, before Nova does
                    # anything, so even a write is safe to send once more
                    # (with the token keystoneauth holds now).
                    resent_after_401 = True
                    LOG.debug("Sending %s %s again after HTTP 401", method,
                              url)
                    continue
                if status not in _RETRIABLE_STATUS or not idempotent:
                    raise _error_for(method, url, response)
                if attempt >= self._read_retries:
                    raise exceptions.NovaUnavailable(
                        f"{service} keeps failing ({method} {url}: HTTP "
                        f"{status} after {attempt + 1} attempts)"
                    )
                LOG.debug("Retrying %s %s after HTTP %s", method, url, status)
            self._sleep(self._delay(attempt))
            attempt += 1

    def _delay(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff * (2 ** attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _action(
        self,
        server_id: str,
        body: dict[str, Any],
        call: mv.Call,
    ) -> base.ActionResult:
        response = self._call(
            "POST",
            f"/servers/{server_id}/action",
            json=body,
            microversion=self._mv(call),
        )
        return base.ActionResult(
            request_id=response.headers.get("x-openstack-request-id"),
            accepted_at=response.headers.get("Date"),
        )

    def _pages(
        self, url: str, key: str, params: dict[str, Any], call: mv.Call
    ) -> Iterator[dict[str, Any]]:
        params = dict(params, limit=_PAGE_LIMIT)
        while True:
            body = self._call(
                "GET", url, params=params, microversion=self._mv(call)
            ).json()
            items = body.get(key) or []
            yield from items
            # Nova caps a page at its [api] max_limit, which may be lower
            # than ours: only the absence of a "next" link ends the list.
            links = body.get(f"{key}_links") or []
            if not items or not any(
                link.get("rel") == "next" for link in links
            ):
                return
            marker = items[-1].get("uuid") or items[-1]["id"]
            params = dict(params, marker=marker)

    # -- servers -----------------------------------------------------------

    def get_server(self, server_id: str) -> models.Server:
        body = self._call(
            "GET", f"/servers/{server_id}", microversion=self._mv(mv.SERVERS)
        ).json()
        return models.Server.from_api(body["server"])

    def find_server(self, ref: str) -> models.Server:
        if _is_uuid(ref):
            try:
                return self.get_server(ref)
            except exceptions.NotFound:
                raise exceptions.InvalidInput(
                    f"server {ref}: no such server; check the id with "
                    "'openstack server list --all-projects'"
                ) from None
        matches = [
            s for s in self._servers_detail(
                {"name": f"^{_regex_escape(ref)}$"})
            if s.name == ref
        ]
        if not matches:
            raise exceptions.InvalidInput(
                f"server {ref!r}: no server has this name or id; check it "
                "with 'openstack server list --all-projects'"
            )
        if len(matches) > 1:
            raise exceptions.InvalidInput(
                f"server {ref!r}: {len(matches)} servers have this name; "
                "give its id instead"
            )
        return matches[0]

    def list_servers(self, host: str) -> list[models.Server]:
        return self._servers_detail({"host": host})

    def list_changed_servers(self, since: str) -> list[models.Server]:
        return self._servers_detail({"changes-since": since})

    def _servers_detail(self, filters: dict[str, Any]
                        ) -> list[models.Server]:
        """The servers of every project that ``filters`` select, every
        page of ``GET /servers/detail``."""
        return [
            models.Server.from_api(s)
            for s in self._pages("/servers/detail", "servers",
                                 {"all_tenants": 1, **filters}, mv.SERVERS)
        ]

    def start_server(self, server_id: str) -> base.ActionResult:
        return self._action(server_id, {"os-start": None}, mv.SERVERS)

    def stop_server(self, server_id: str) -> base.ActionResult:
        return self._action(server_id, {"os-stop": None}, mv.SERVERS)

    # -- services and capacity ---------------------------------------------

    def list_services(self) -> list[models.Service]:
        """Every nova-compute service: the first time, the read
        :meth:`prefetch` started (its answer, or its error: it was retried
        as any read is)."""
        with self._lock:
            prefetched, self._services_read = self._services_read, None
        if prefetched is not None:
            return prefetched.result()
        return self._read_services()

    def _read_services(self) -> list[models.Service]:
        body = self._call(
            "GET",
            "/os-services",
            params={"binary": "nova-compute"},
            microversion=self._mv(mv.SERVICES),
        ).json()
        return [models.Service.from_api(s) for s in body["services"]]

    def update_service(
        self,
        service_id: str,
        *,
        disabled: bool | None = None,
        disabled_reason: str | None = None,
        forced_down: bool | None = None,
    ) -> models.Service:
        body: dict[str, Any] = {}
        if disabled is not None:
            body["status"] = "disabled" if disabled else "enabled"
        if disabled_reason is not None:
            body["disabled_reason"] = disabled_reason
        if forced_down is not None:
            body["forced_down"] = forced_down
        result = self._call(
            "PUT",
            f"/os-services/{service_id}",
            json=body,
            microversion=self._mv(mv.SERVICES),
        ).json()
        return models.Service.from_api(result["service"])

    def host_capacities(self) -> dict[str, models.HostCapacity]:
        """Free capacity by host: one hypervisor listing, then each
        hypervisor's placement inventories and usages, read
        :data:`PLACEMENT_READERS` at a time."""
        nodes = [
            (host, hypervisor["id"])
            for hypervisor in self._pages(
                "/os-hypervisors/detail", "hypervisors", {}, mv.HYPERVISORS
            )
            if (host := (hypervisor.get("service") or {}).get("host"))
        ]
        if not nodes:
            return {}
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(PLACEMENT_READERS, len(nodes)),
            thread_name_prefix="placement-read",
        ) as pool:
            frees = list(pool.map(self._provider_free,
                                  [node for _, node in nodes]))
        capacities: dict[str, models.HostCapacity] = {}
        for (host, _), free in zip(nodes, frees, strict=True):
            if free is None:
                return {}
            if host in capacities:
                old = capacities[host]
                free = models.HostCapacity(
                    host,
                    old.vcpus + free.vcpus,
                    old.ram_mb + free.ram_mb,
                    old.disk_gb + free.disk_gb,
                )
            capacities[host] = models.HostCapacity(
                host, free.vcpus, free.ram_mb, free.disk_gb
            )
        return capacities

    def _provider_free(self, provider: str) -> models.HostCapacity | None:
        try:
            inventories = self._call(
                "GET",
                f"/resource_providers/{provider}/inventories",
                service="placement",
                microversion=PLACEMENT_MV,
            ).json()["inventories"]
            usages = self._call(
                "GET",
                f"/resource_providers/{provider}/usages",
                service="placement",
                microversion=PLACEMENT_MV,
            ).json()["usages"]
        except (exceptions.NotFound, exceptions.NovaUnavailable) as exc:
            LOG.warning("Placement cannot tell free capacity: %s", exc)
            return None

        def free(resource: str) -> int:
            inv = inventories.get(resource)
            if not inv:
                return 0
            total = (inv["total"] - inv.get("reserved", 0)) * inv.get(
                "allocation_ratio", 1.0
            )
            return int(total) - int(usages.get(resource, 0))

        return models.HostCapacity(
            provider, free("VCPU"), free("MEMORY_MB"), free("DISK_GB")
        )

    def get_flavor(self, ref: str) -> models.Flavor:
        try:
            body = self._call(
                "GET", f"/flavors/{ref}", microversion=self._mv(mv.FLAVORS)
            ).json()
            return models.Flavor.from_flavor(body["flavor"])
        except exceptions.NotFound:
            pass
        for flavor in self._pages(
            "/flavors/detail", "flavors", {"is_public": "None"}, mv.FLAVORS
        ):
            if flavor.get("name") == ref:
                return models.Flavor.from_flavor(flavor)
        raise exceptions.NotFound(f"flavor {ref!r}: no such flavor", 404)

    def list_server_groups(self) -> list[models.ServerGroup]:
        groups: list[models.ServerGroup] = []
        # Nova pages server groups by offset, up to its [api] max_limit
        # (which may be lower than ours): only an empty page ends the list.
        while True:
            body = self._call(
                "GET",
                "/os-server-groups",
                params={"all_projects": "True", "limit": _PAGE_LIMIT,
                        "offset": len(groups)},
                microversion=self._mv(mv.SERVER_GROUPS),
            ).json()
            page = body.get("server_groups") or []
            if not page:
                return groups
            groups.extend(models.ServerGroup.from_api(g) for g in page)

    # -- moving servers ----------------------------------------------------

    def live_migrate(
        self,
        server_id: str,
        host: str | None,
        block_migration: bool | str,
        force: bool = False,
    ) -> base.ActionResult:
        body: dict[str, Any] = {
            "host": host,
            "block_migration": block_migration,
        }
        call = mv.LIVE_MIGRATE
        if force:
            body["force"] = True
            call = mv.LIVE_MIGRATE_FORCED
        return self._action(server_id, {"os-migrateLive": body}, call)

    def cold_migrate(
        self, server_id: str, host: str | None
    ) -> base.ActionResult:
        body = {"host": host} if host else None
        return self._action(server_id, {"migrate": body}, mv.COLD_MIGRATE)

    def resize(self, server_id: str, flavor_id: str) -> base.ActionResult:
        return self._action(
            server_id, {"resize": {"flavorRef": flavor_id}}, mv.SERVERS
        )

    def confirm_resize(self, server_id: str) -> base.ActionResult:
        return self._action(server_id, {"confirmResize": None}, mv.SERVERS)

    def revert_resize(self, server_id: str) -> base.ActionResult:
        return self._action(server_id, {"revertResize": None}, mv.SERVERS)

    def evacuate(
        self, server_id: str, host: str | None
    ) -> base.ActionResult:
        body = {"host": host} if host else {}
        return self._action(server_id, {"evacuate": body}, mv.EVACUATE)

    def shelve(self, server_id: str) -> base.ActionResult:
        return self._action(server_id, {"shelve": None}, mv.SERVERS)

    def shelve_offload(self, server_id: str) -> base.ActionResult:
        return self._action(server_id, {"shelveOffload": None}, mv.SERVERS)

    def unshelve(
        self, server_id: str, host: str | None
    ) -> base.ActionResult:
        if host:
            return self._action(server_id, {"unshelve": {"host": host}},
                                mv.UNSHELVE_TO_HOST)
        return self._action(server_id, {"unshelve": None}, mv.SERVERS)

    # -- migrations --------------------------------------------------------

    def list_migrations(
        self,
        *,
        server_id: str | None = None,
        host: str | None = None,
        source_compute: str | None = None,
        status: str | None = None,
        migration_type: str | None = None,
        changes_since: str | None = None,
    ) -> list[models.Migration]:
        params = {
            key: value
            for key, value in (
                ("instance_uuid", server_id),
                ("host", host),
                ("source_compute", source_compute),
                ("status", status),
                ("migration_type", migration_type),
                ("changes-since", changes_since),
            )
            if value
        }
        return [
            models.Migration.from_api(m)
            for m in self._pages(
                "/os-migrations", "migrations", params, mv.MIGRATIONS
            )
        ]

    def server_migrations(self, server_id: str) -> list[models.Migration]:
        body = self._call(
            "GET",
            f"/servers/{server_id}/migrations",
            microversion=self._mv(mv.MIGRATIONS),
        ).json()
        return [
            models.Migration.from_api(m, server_id)
            for m in body.get("migrations") or []
        ]

    def abort_migration(self, server_id: str, migration_id: int) -> None:
        self._call(
            "DELETE",
            f"/servers/{server_id}/migrations/{migration_id}",
            microversion=self._mv(mv.ABORT),
        )

    def force_complete_migration(
        self, server_id: str, migration_id: int
    ) -> None:
        self._call(
            "POST",
            f"/servers/{server_id}/migrations/{migration_id}/action",
            json={"force_complete": None},
            microversion=self._mv(mv.FORCE_COMPLETE),
        )

    # -- diagnosis ---------------------------------------------------------

    def instance_action(
        self, server_id: str, request_id: str
    ) -> models.InstanceAction | None:
        try:
            body = self._call(
                "GET",
                f"/servers/{server_id}/os-instance-actions/{request_id}",
                microversion=self._mv(mv.ACTIONS),
            ).json()
        except exceptions.NotFound:
            return None
        return _action_from_api(body["instanceAction"])

    def instance_actions(
        self, server_id: str
    ) -> list[models.InstanceAction]:
        body = self._call(
            "GET",
            f"/servers/{server_id}/os-instance-actions",
            microversion=self._mv(mv.ACTIONS),
        ).json()
        return [_action_from_api(a) for a in body["instanceActions"]]


def _action_from_api(data: dict[str, Any]) -> models.InstanceAction:
    events = tuple(
        models.ActionEvent(
            event=e.get("event") or "",
            result=e.get("result"),
            start_time=e.get("start_time"),
            finish_time=e.get("finish_time"),
            host=e.get("host"),
            details=e.get("details"),
            traceback=e.get("traceback"),
        ).to_dict()
        for e in data.get("events") or ()
    )
    return models.InstanceAction(
        action=data.get("action") or "",
        request_id=data.get("request_id") or "",
        start_time=data.get("start_time"),
        message=data.get("message"),
        events=events,
    )


def _error_for(
    method: str, url: str, response: Any
) -> exceptions.NovaMigrateFlowsError:
    status = response.status_code
    message = _nova_message(response) or response.reason or ""
    request_id = response.headers.get("x-openstack-request-id")
    text = f"{method} {url}: HTTP {status}: {message}"
    if status == 401:
        return exceptions.AuthenticationFailed(
            f"authentication failed ({text}); check the credentials"
        )
    if status == 403:
        return exceptions.NotAuthorized(
            f"not authorised ({text}); this needs admin credentials"
        )
    if status == 404:
        return exceptions.NotFound(text, status, request_id)
    if status == 409:
        return exceptions.Conflict(text, status, request_id)
    if status == 400 and "no valid host" in message.lower():
        return exceptions.NoValidHost(text, status, request_id)
    if status == 400:
        return exceptions.BadRequest(text, status, request_id)
    if status >= 500 and method != "GET":
        return exceptions.AmbiguousWrite(text, status, request_id)
    return exceptions.ComputeError(text, status, request_id)


def _nova_message(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return str(errors[0].get("detail") or errors[0].get("title"))
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _regex_escape(value: str) -> str:
    return "".join("\\" + c if c in ".^$*+?{}[]\\|()" else c for c in value)
