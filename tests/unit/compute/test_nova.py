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
"""NovaCompute against a fake openstacksdk connection."""

import concurrent.futures
import threading
import uuid
from typing import Any

import pytest
from keystoneauth1 import exceptions as ks_exc

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import base, models, nova
from tests.unit.compute.conftest import (
    FakeResponse,
    error,
    ok,
    paged,
    version_document,
)

SERVER_ID = "6f1c2d4e-0b8a-4c55-9d1e-2a3b4c5d6e7f"
SERVER_URL = f"/servers/{SERVER_ID}"
ACTION_URL = f"/servers/{SERVER_ID}/action"
DATE = "Thu, 01 Jan 2026 00:00:05 GMT"


def server_body(name: str = "web-1", server_id: str | None = None,
                host: str = "host1") -> dict[str, Any]:
    """A server as ``GET /servers/{id}`` shows it at 2.73."""
    return {
        "id": server_id or str(uuid.uuid4()),
        "name": name,
        "status": "ACTIVE",
        "OS-EXT-SRV-ATTR:host": host,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": f"{host}.example",
        "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:vm_state": "active",
        "OS-EXT-STS:power_state": 1,
        "flavor": {"original_name": "m1.small", "ram": 2048, "vcpus": 1,
                   "disk": 20, "ephemeral": 0, "swap": 0},
        "image": {"id": "a1b2"},
        "locked": False,
        "tenant_id": "demo",
        "metadata": {},
    }


def migration_body(migration_id: int, **fields: Any) -> dict[str, Any]:
    """A row of ``GET /os-migrations`` at 2.80."""
    return {
        "id": migration_id,
        "uuid": str(uuid.UUID(int=migration_id)),
        "instance_uuid": SERVER_ID,
        "status": "running",
        "migration_type": "live-migration",
        "source_compute": "host1",
        "dest_compute": "host2",
        "created_at": "2026-01-01T00:00:00.000000",
        "updated_at": "2026-01-01T00:00:01.000000",
        **fields,
    }


# -- errors ----------------------------------------------------------------

ERRORS = [
    (401, "unauthorized", "Authentication required",
     exceptions.AuthenticationFailed),
    (403, "forbidden", "Policy doesn't allow it",
     exceptions.NotAuthorized),
    (404, "itemNotFound", "Instance could not be found",
     exceptions.NotFound),
    (409, "conflictingRequest", "Cannot 'os-migrateLive' instance",
     exceptions.Conflict),
    (400, "badRequest", "No valid host was found. There are not enough "
     "hosts available.", exceptions.NoValidHost),
    (400, "badRequest", "Invalid input for field/attribute host",
     exceptions.BadRequest),
    (422, "unprocessable", "Something odd", exceptions.ComputeError),
]
ERROR_IDS = ["401", "403", "404", "409", "400-no-valid-host", "400", "422"]


@pytest.mark.parametrize(("status", "kind", "message", "expected"), ERRORS,
                         ids=ERROR_IDS)
def test_error_answers_map_to_exceptions(
    compute, connection, sleeps, status, kind, message, expected
):
    connection.compute.route(
        "POST", ACTION_URL,
        error(status, kind, message, **{"x-openstack-request-id": "req-1"}),
    )

    with pytest.raises(expected) as raised:
        compute.live_migrate(SERVER_ID, "host2", "auto")

    assert type(raised.value) is expected
    assert message in str(raised.value)
    # A 401 is sent once more (see below); nothing else is.
    assert len(connection.compute.sent) == (2 if status == 401 else 1)
    assert sleeps == []


@pytest.mark.parametrize(
    ("call", "method", "url"),
    [(lambda c: c.live_migrate(SERVER_ID, "host2", "auto"), "POST",
      ACTION_URL),
     (lambda c: c.get_server(SERVER_ID), "GET", SERVER_URL)],
    ids=["write", "read"],
)
def test_a_request_refused_with_401_is_sent_once_more(
    compute, connection, sleeps, call, method, url
):
    # keystoneauth gives up on a 401 when another request cleared its token
    # first (two requests met a revoked token at once); sent again, the
    # request goes with the token keystoneauth fetched meanwhile.
    answer = ok({"server": {"id": SERVER_ID}}, status=202)
    connection.compute.route(
        method, url,
        error(401, "error", "The request you have made requires "
              "authentication."),
        answer,
    )

    call(compute)

    assert connection.compute.urls() == [f"{method} {url}"] * 2
    assert sleeps == []


@pytest.mark.parametrize(("status", "kind", "message", "expected"),
                         [e for e in ERRORS if e[0] not in (401, 403)],
                         ids=[i for i in ERROR_IDS if i not in ("401", "403")])
def test_compute_errors_carry_status_and_request_id(
    compute, connection, status, kind, message, expected
):
    connection.compute.route(
        "GET", SERVER_URL,
        error(status, kind, message, **{"x-openstack-request-id": "req-9"}),
    )

    with pytest.raises(expected) as raised:
        compute.get_server(SERVER_ID)

    assert raised.value.status_code == status
    assert raised.value.request_id == "req-9"


def test_placement_errors_are_logged_with_their_detail(
    compute, connection, caplog
):
    connection.compute.route("GET", "/os-hypervisors/detail", ok({
        "hypervisors": [hypervisor("rp1", "host1")],
    }))
    connection.placement.route(
        "GET", "/resource_providers/rp1/inventories",
        FakeResponse(404, {"errors": [{
            "status": 404, "title": "Not Found",
            "detail": "No resource provider with uuid rp1 found"}]}),
    )

    with caplog.at_level("WARNING", logger="nova_migrate_flows"):
        assert compute.host_capacities() == {}

    assert "No resource provider with uuid rp1 found" in caplog.text


def test_an_error_without_a_json_body_reports_the_reason(compute, connection):
    connection.compute.route(
        "GET", SERVER_URL, FakeResponse(404, None, reason="Not Found")
    )

    with pytest.raises(exceptions.NotFound, match="HTTP 404: Not Found"):
        compute.get_server(SERVER_ID)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ks_exc.Unauthorized("token expired"),
         exceptions.AuthenticationFailed),
        (ks_exc.AuthorizationFailure("bad password"),
         exceptions.AuthenticationFailed),
        (ks_exc.Forbidden("no role"), exceptions.NotAuthorized),
        (ks_exc.EndpointNotFound("no compute"), exceptions.NovaUnavailable),
        (ks_exc.DiscoveryFailure("no versions"), exceptions.NovaUnavailable),
        (ks_exc.SSLError("certificate verify failed"),
         exceptions.NovaUnavailable),
    ],
    ids=["unauthorized", "authorization-failure", "forbidden",
         "no-endpoint", "discovery", "tls"],
)
def test_fatal_transport_errors_are_not_retried(
    compute, connection, sleeps, raised, expected
):
    connection.compute.route("GET", SERVER_URL, raised)

    with pytest.raises(expected) as caught:
        compute.get_server(SERVER_ID)

    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised
    assert len(connection.compute.sent) == 1
    assert sleeps == []


# -- retries ---------------------------------------------------------------

@pytest.mark.parametrize(
    "failure",
    [
        FakeResponse(500, None, reason="Internal Server Error"),
        FakeResponse(502, None, reason="Bad Gateway"),
        FakeResponse(503, None, reason="Service Unavailable"),
        FakeResponse(504, None, reason="Gateway Timeout"),
        ks_exc.ConnectFailure("connection refused"),
        ks_exc.ConnectTimeout("timed out"),
        ks_exc.UnknownConnectionError("reset by peer", None),
    ],
    ids=["500", "502", "503", "504", "connect-failure", "connect-timeout",
         "reset"],
)
def test_reads_are_retried_until_they_succeed(
    compute, connection, sleeps, failure
):
    body = server_body(server_id=SERVER_ID)
    connection.compute.route(
        "GET", SERVER_URL, failure, failure, ok({"server": body})
    )

    server = compute.get_server(SERVER_ID)

    assert server.id == SERVER_ID
    assert len(connection.compute.sent) == 3
    assert len(sleeps) == 2
    assert compute.request_counts == {"GET compute": 3}


@pytest.mark.parametrize(
    "failure",
    [FakeResponse(503, None, reason="Service Unavailable"),
     ks_exc.ConnectFailure("connection refused")],
    ids=["503", "connect-failure"],
)
def test_reads_give_up_as_nova_unavailable(
    compute, connection, sleeps, failure
):
    connection.compute.route("GET", "/os-services", failure)

    with pytest.raises(exceptions.NovaUnavailable) as raised:
        compute.list_services()

    assert type(raised.value) is exceptions.NovaUnavailable
    # read_retries=3: the first attempt and three more.
    assert len(connection.compute.sent) == 4
    assert len(sleeps) == 3


def test_retry_delays_back_off_exponentially_up_to_the_cap(connection):
    sleeps: list[float] = []
    compute = nova.NovaCompute(
        connection, read_retries=6, retry_backoff=1.0,
        retry_backoff_max=5.0, sleep=sleeps.append,
    )
    connection.compute.route("GET", "/os-services", FakeResponse(503))

    with pytest.raises(exceptions.NovaUnavailable):
        compute.list_services()

    # Each delay is jittered within the upper half of its ceiling.
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert len(sleeps) == len(ceilings)
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("call", "method", "url"),
    [
        (lambda c: c.live_migrate(SERVER_ID, None, "auto"), "POST",
         ACTION_URL),
        (lambda c: c.cold_migrate(SERVER_ID, None), "POST", ACTION_URL),
        (lambda c: c.update_service("svc", disabled=True), "PUT",
         "/os-services/svc"),
        (lambda c: c.abort_migration(SERVER_ID, 7), "DELETE",
         f"{SERVER_URL}/migrations/7"),
        (lambda c: c.force_complete_migration(SERVER_ID, 7), "POST",
         f"{SERVER_URL}/migrations/7/action"),
    ],
    ids=["live-migrate", "cold-migrate", "update-service", "abort",
         "force-complete"],
)
@pytest.mark.parametrize(
    "failure",
    [FakeResponse(500, {"computeFault": {"message": "boom", "code": 500}}),
     FakeResponse(503, None, reason="Service Unavailable"),
     ks_exc.ConnectTimeout("timed out"),
     ks_exc.UnknownConnectionError("reset by peer", None)],
    ids=["500", "503", "timeout", "reset"],
)
def test_writes_are_never_retried(
    compute, connection, sleeps, call, method, url, failure
):
    connection.compute.route(method, url, failure, ok({}))

    with pytest.raises(exceptions.AmbiguousWrite):
        call(compute)

    assert connection.compute.urls() == [f"{method} {url}"]
    assert sleeps == []
    assert compute.request_counts == {f"{method} compute": 1}


def test_a_read_answered_with_a_server_error_is_not_an_ambiguous_write(
    compute, connection, sleeps
):
    connection.compute.route(
        "GET", SERVER_URL, FakeResponse(501, None, reason="Not Implemented")
    )

    with pytest.raises(exceptions.ComputeError) as raised:
        compute.get_server(SERVER_ID)

    assert not isinstance(raised.value, exceptions.AmbiguousWrite)
    assert raised.value.status_code == 501
    assert sleeps == []


def test_request_counts_count_every_attempt_per_method_and_service(
    compute, connection
):
    connection.compute.route("GET", "/os-services", FakeResponse(502),
                             ok({"services": []}))
    connection.compute.route("POST", ACTION_URL, ok(status=202))

    compute.list_services()
    compute.start_server(SERVER_ID)
    compute.stop_server(SERVER_ID)

    assert compute.request_counts == {"GET compute": 2, "POST compute": 2}


# -- servers ---------------------------------------------------------------

def test_get_server_reads_the_server_at_2_73(compute, connection):
    connection.compute.route(
        "GET", SERVER_URL,
        ok({"server": server_body("db", SERVER_ID, host="host3")}),
    )

    server = compute.get_server(SERVER_ID)

    assert (server.id, server.name, server.host) == (SERVER_ID, "db", "host3")
    [sent] = connection.compute.sent
    assert sent.microversion == "2.73"
    assert sent.raise_exc is False


def test_find_server_by_id_reads_only_that_server(compute, connection):
    connection.compute.route(
        "GET", SERVER_URL, ok({"server": server_body("db", SERVER_ID)})
    )

    assert compute.find_server(SERVER_ID).name == "db"
    assert connection.compute.urls() == [f"GET {SERVER_URL}"]


def test_find_server_by_an_unknown_id_is_invalid_input(compute, connection):
    with pytest.raises(exceptions.InvalidInput, match="no such server"):
        compute.find_server(SERVER_ID)


def test_find_server_by_name_takes_the_exact_match_of_nova_regex(
    compute, connection
):
    # Nova matches the name filter as a regular expression.
    wanted = server_body("web.1")
    others = [server_body("web.10"), server_body("xweb.1")]
    connection.compute.route(
        "GET", "/servers/detail", ok({"servers": [others[0], wanted,
                                                  others[1]]})
    )

    assert compute.find_server("web.1").id == wanted["id"]
    [sent] = connection.compute.sent
    assert sent.params == {"all_tenants": 1, "name": r"^web\.1$",
                           "limit": 1000}
    assert sent.microversion == "2.73"


@pytest.mark.parametrize(
    ("servers", "message"),
    [([], "no server has this name or id"),
     ([server_body("web"), server_body("web")], "2 servers have this name")],
    ids=["unknown", "ambiguous"],
)
def test_find_server_by_name_must_find_exactly_one(
    compute, connection, servers, message
):
    connection.compute.route("GET", "/servers/detail",
                             ok({"servers": servers}))

    with pytest.raises(exceptions.InvalidInput, match=message):
        compute.find_server("web")


@pytest.mark.parametrize(
    ("count", "max_limit"),
    [(5, 2), (7, 1000), (1001, 1000), (1000, 1000)],
    ids=["small-max-limit", "one-page", "two-pages", "exactly-one-page"],
)
def test_list_servers_follows_the_pages(compute, connection, count, max_limit):
    servers = [server_body(f"s{i}") for i in range(count)]
    connection.compute.route("GET", "/servers/detail",
                             paged("servers", servers, max_limit))

    found = compute.list_servers("host1")

    assert [s.id for s in found] == [s["id"] for s in servers]
    first = connection.compute.sent[0]
    assert first.params == {"all_tenants": 1, "host": "host1", "limit": 1000}
    markers = [s.params.get("marker") for s in connection.compute.sent[1:]]
    page = min(max_limit, 1000)
    assert markers == [servers[i - 1]["id"]
                       for i in range(page, count + 1, page)]


@pytest.mark.parametrize(
    ("call", "microversion", "body"),
    [
        (lambda c: c.live_migrate(SERVER_ID, "host2", "auto"), "2.68",
         {"os-migrateLive": {"host": "host2", "block_migration": "auto"}}),
        (lambda c: c.live_migrate(SERVER_ID, None, True), "2.68",
         {"os-migrateLive": {"host": None, "block_migration": True}}),
        (lambda c: c.live_migrate(SERVER_ID, "host2", False, force=True),
         "2.67",
         {"os-migrateLive": {"host": "host2", "block_migration": False,
                             "force": True}}),
        (lambda c: c.cold_migrate(SERVER_ID, "host2"), "2.56",
         {"migrate": {"host": "host2"}}),
        (lambda c: c.cold_migrate(SERVER_ID, None), "2.56",
         {"migrate": None}),
        (lambda c: c.resize(SERVER_ID, "3"), "2.73",
         {"resize": {"flavorRef": "3"}}),
        (lambda c: c.confirm_resize(SERVER_ID), "2.73",
         {"confirmResize": None}),
        (lambda c: c.revert_resize(SERVER_ID), "2.73",
         {"revertResize": None}),
        (lambda c: c.evacuate(SERVER_ID, "host2"), "2.95",
         {"evacuate": {"host": "host2"}}),
        (lambda c: c.evacuate(SERVER_ID, None), "2.95", {"evacuate": {}}),
        (lambda c: c.start_server(SERVER_ID), "2.73", {"os-start": None}),
        (lambda c: c.stop_server(SERVER_ID), "2.73", {"os-stop": None}),
    ],
    ids=["live", "live-scheduled-block", "live-forced", "cold-to-host",
         "cold-scheduled", "resize", "confirm", "revert", "evacuate-to-host",
         "evacuate-scheduled", "start", "stop"],
)
def test_server_actions_send_their_body_and_microversion(
    compute, connection, call, microversion, body
):
    connection.compute.route(
        "POST", ACTION_URL,
        ok(status=202, **{"x-openstack-request-id": "req-42", "Date": DATE}),
    )

    result = call(compute)

    assert result.request_id == "req-42"
    assert result.accepted_at == DATE
    [sent] = connection.compute.sent
    assert (sent.method, sent.url) == ("POST", ACTION_URL)
    assert sent.json == body
    assert sent.microversion == microversion


def test_an_action_answer_without_headers_has_no_request_id(
    compute, connection
):
    connection.compute.route("POST", ACTION_URL, ok(status=202))

    assert compute.stop_server(SERVER_ID) == base.ActionResult(None, None)


def test_list_server_groups_of_every_project_by_offset(compute,
                                                        connection):
    groups = [{"id": f"g{i}", "name": f"group-{i}", "policy": "affinity",
               "rules": {}, "members": [f"s{i}"]} for i in range(3)]

    def answer(sent):
        offset = int(sent.params["offset"])
        return ok({"server_groups": groups[offset:offset + 2]})

    connection.compute.route("GET", "/os-server-groups", answer)

    found = compute.list_server_groups()

    assert [(g.id, g.policy, g.members) for g in found] == [
        ("g0", "affinity", ("s0",)), ("g1", "affinity", ("s1",)),
        ("g2", "affinity", ("s2",))]
    assert [(s.params, s.microversion) for s in connection.compute.sent] == [
        ({"all_projects": "True", "limit": 1000, "offset": offset}, "2.64")
        for offset in (0, 2, 3)
    ]


# -- services, flavors, capacity -------------------------------------------

def test_list_services_asks_for_compute_services(compute, connection):
    connection.compute.route("GET", "/os-services", ok({"services": [
        {"id": "u1", "host": "host1", "binary": "nova-compute",
         "status": "enabled", "state": "up", "forced_down": False},
    ]}))

    [service] = compute.list_services()

    assert (service.id, service.host, service.up) == ("u1", "host1", True)
    [sent] = connection.compute.sent
    assert sent.params == {"binary": "nova-compute"}
    assert sent.microversion == "2.53"


@pytest.mark.parametrize(
    ("given", "body"),
    [
        ({"disabled": True, "disabled_reason": "drain"},
         {"status": "disabled", "disabled_reason": "drain"}),
        ({"disabled": False}, {"status": "enabled"}),
        ({"forced_down": True}, {"forced_down": True}),
        ({"forced_down": False}, {"forced_down": False}),
    ],
    ids=["disable", "enable", "force-down", "unforce-down"],
)
def test_update_service_sends_only_what_changes(
    compute, connection, given, body
):
    connection.compute.route("PUT", "/os-services/u1", ok({"service": {
        "id": "u1", "host": "host1", "binary": "nova-compute",
        "status": "disabled", "state": "down", "forced_down": True,
    }}))

    service = compute.update_service("u1", **given)

    assert service.host == "host1"
    [sent] = connection.compute.sent
    assert sent.json == body
    assert sent.microversion == "2.53"


def test_get_flavor_by_id(compute, connection):
    connection.compute.route("GET", "/flavors/3", ok({"flavor": {
        "id": "3", "name": "m1.medium", "ram": 4096, "vcpus": 2, "disk": 40,
        "OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0,
    }}))

    flavor = compute.get_flavor("3")

    assert (flavor.id, flavor.name, flavor.ram_mb) == ("3", "m1.medium", 4096)
    assert connection.compute.sent[0].microversion == "2.61"


def test_get_flavor_by_name_searches_every_flavor(compute, connection):
    connection.compute.route("GET", "/flavors/detail", ok({"flavors": [
        {"id": "2", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
        {"id": "3", "name": "m1.medium", "ram": 4096, "vcpus": 2,
         "disk": 40},
    ]}))

    assert compute.get_flavor("m1.medium").id == "3"
    assert connection.compute.urls() == ["GET /flavors/m1.medium",
                                         "GET /flavors/detail"]
    assert connection.compute.sent[1].params == {"is_public": "None",
                                                 "limit": 1000}


def test_get_flavor_unknown_is_not_found(compute, connection):
    connection.compute.route("GET", "/flavors/detail", ok({"flavors": []}))

    with pytest.raises(exceptions.NotFound, match="no such flavor"):
        compute.get_flavor("m9.huge")


def hypervisor(provider: str, host: str | None) -> dict[str, Any]:
    return {"id": provider, "hypervisor_hostname": f"{provider}.node",
            "service": {"host": host, "id": "svc"} if host else None}


def inventory(total: int, reserved: int = 0, ratio: float = 1.0
              ) -> dict[str, Any]:
    return {"total": total, "reserved": reserved, "allocation_ratio": ratio,
            "min_unit": 1, "max_unit": total, "step_size": 1}


def provider(connection, uuid_: str, inventories: dict[str, Any],
             usages: dict[str, int]) -> None:
    connection.placement.route(
        "GET", f"/resource_providers/{uuid_}/inventories",
        ok({"inventories": inventories, "resource_provider_generation": 1}),
    )
    connection.placement.route(
        "GET", f"/resource_providers/{uuid_}/usages",
        ok({"usages": usages, "resource_provider_generation": 1}),
    )


def test_host_capacities_count_ratio_reserved_and_usage(compute, connection):
    connection.compute.route("GET", "/os-hypervisors/detail", ok({
        "hypervisors": [hypervisor("rp1", "host1"),
                        hypervisor("rp2", "host2")],
    }))
    provider(connection, "rp1", {
        "VCPU": inventory(16, reserved=2, ratio=4.0),
        "MEMORY_MB": inventory(65536, reserved=512, ratio=1.5),
        "DISK_GB": inventory(1000, reserved=10),
    }, {"VCPU": 10, "MEMORY_MB": 4096, "DISK_GB": 100})
    provider(connection, "rp2", {
        "VCPU": inventory(8), "MEMORY_MB": inventory(16384),
    }, {"VCPU": 8})

    capacities = compute.host_capacities()

    assert capacities == {
        "host1": models.HostCapacity("host1", (16 - 2) * 4 - 10,
                                     int((65536 - 512) * 1.5) - 4096,
                                     1000 - 10 - 100),
        "host2": models.HostCapacity("host2", 0, 16384, 0),
    }
    assert connection.compute.sent[0].microversion == "2.53"
    assert {s.microversion for s in connection.placement.sent} == {"1.14"}
    assert compute.request_counts == {"GET compute": 1, "GET placement": 4}


def test_host_capacities_add_up_the_nodes_of_a_host(compute, connection):
    connection.compute.route("GET", "/os-hypervisors/detail", ok({
        "hypervisors": [hypervisor("rp1", "ironic"),
                        hypervisor("rp2", "ironic"),
                        hypervisor("rp3", None)],
    }))
    for name in ("rp1", "rp2"):
        provider(connection, name, {
            "VCPU": inventory(4), "MEMORY_MB": inventory(1024),
            "DISK_GB": inventory(10),
        }, {"VCPU": 1})

    assert compute.host_capacities() == {
        "ironic": models.HostCapacity("ironic", 6, 2048, 20),
    }
    assert "GET /resource_providers/rp3/usages" not in (
        connection.placement.urls())


def test_host_capacities_follow_the_hypervisor_pages(compute, connection):
    hypervisors = [hypervisor(f"rp{i}", f"host{i}") for i in range(3)]
    connection.compute.route("GET", "/os-hypervisors/detail",
                             paged("hypervisors", hypervisors, 2))
    for i in range(3):
        provider(connection, f"rp{i}", {"VCPU": inventory(4)}, {})

    assert sorted(compute.host_capacities()) == ["host0", "host1", "host2"]


def test_host_capacities_read_the_providers_at_once(compute, connection):
    # Each host's inventories answer only once the other host's are being
    # read too: read one host after the other, the barrier breaks.
    both_reading = threading.Barrier(2, timeout=10)

    def together(sent: Any) -> FakeResponse:
        both_reading.wait()
        return ok({"inventories": {"VCPU": inventory(4)},
                   "resource_provider_generation": 1})

    connection.compute.route("GET", "/os-hypervisors/detail", ok({
        "hypervisors": [hypervisor("rp1", "host1"),
                        hypervisor("rp2", "host2")],
    }))
    for name in ("rp1", "rp2"):
        connection.placement.route(
            "GET", f"/resource_providers/{name}/inventories", together)
        connection.placement.route(
            "GET", f"/resource_providers/{name}/usages",
            ok({"usages": {}, "resource_provider_generation": 1}))

    assert compute.host_capacities() == {
        "host1": models.HostCapacity("host1", 4, 0, 0),
        "host2": models.HostCapacity("host2", 4, 0, 0),
    }


@pytest.mark.parametrize(
    "failure",
    [error(404, "itemNotFound", "No resource provider"),
     FakeResponse(503, None, reason="Service Unavailable"),
     error(403, "forbidden", "placement needs admin")],
    ids=["unknown-provider", "placement-down", "forbidden"],
)
def test_host_capacities_are_unknown_when_placement_cannot_tell(
    compute, connection, failure
):
    connection.compute.route("GET", "/os-hypervisors/detail", ok({
        "hypervisors": [hypervisor("rp1", "host1")],
    }))
    connection.placement.route(
        "GET", "/resource_providers/rp1/inventories", failure
    )

    assert compute.host_capacities() == {}


# -- migrations ------------------------------------------------------------

def test_list_migrations_sends_only_the_filters_given(compute, connection):
    rows = [migration_body(3, status="queued"), migration_body(2)]
    connection.compute.route("GET", "/os-migrations",
                             ok({"migrations": rows}))

    found = compute.list_migrations(
        source_compute="host1", changes_since="2026-01-01T00:00:00+00:00",
        migration_type="live-migration",
    )

    assert [(m.id, m.status) for m in found] == [(3, "queued"),
                                                 (2, "running")]
    assert found[0].server_id == SERVER_ID
    [sent] = connection.compute.sent
    assert sent.params == {
        "source_compute": "host1",
        "changes-since": "2026-01-01T00:00:00+00:00",
        "migration_type": "live-migration",
        "limit": 1000,
    }
    assert sent.microversion == "2.80"


def test_list_migrations_maps_every_filter(compute, connection):
    connection.compute.route("GET", "/os-migrations",
                             ok({"migrations": []}))

    compute.list_migrations(server_id=SERVER_ID, host="h", status="error")

    assert connection.compute.sent[0].params == {
        "instance_uuid": SERVER_ID, "host": "h", "status": "error",
        "limit": 1000,
    }


def test_list_migrations_pages_with_the_migration_uuid(compute, connection):
    rows = [migration_body(i) for i in range(5, 0, -1)]
    connection.compute.route("GET", "/os-migrations",
                             paged("migrations", rows, 2, "uuid"))

    found = compute.list_migrations(host="host1")

    assert [m.id for m in found] == [5, 4, 3, 2, 1]
    assert [s.params.get("marker") for s in connection.compute.sent] == [
        None, rows[1]["uuid"], rows[3]["uuid"]]


def test_server_migrations_have_progress_and_the_server_id(
    compute, connection
):
    connection.compute.route(
        "GET", f"{SERVER_URL}/migrations", ok({"migrations": [{
            "id": 7, "server_uuid": SERVER_ID, "status": "running",
            "memory_total_bytes": 1000, "memory_processed_bytes": 250,
            "memory_remaining_bytes": 750, "disk_total_bytes": 0,
            "disk_processed_bytes": 0, "disk_remaining_bytes": 0,
        }]}),
    )

    [migration] = compute.server_migrations(SERVER_ID)

    assert migration.server_id == SERVER_ID
    assert migration.migration_type == "live-migration"
    assert migration.percent == 25.0
    assert connection.compute.sent[0].microversion == "2.80"


def test_abort_and_force_complete_use_their_microversions(
    compute, connection
):
    connection.compute.route("DELETE", f"{SERVER_URL}/migrations/7",
                             ok(status=202))
    connection.compute.route("POST", f"{SERVER_URL}/migrations/7/action",
                             ok(status=202))

    compute.abort_migration(SERVER_ID, 7)
    compute.force_complete_migration(SERVER_ID, 7)

    abort, force = connection.compute.sent
    assert (abort.method, abort.microversion, abort.json) == (
        "DELETE", "2.65", None)
    assert (force.method, force.microversion, force.json) == (
        "POST", "2.22", {"force_complete": None})


# -- diagnosis -------------------------------------------------------------

def test_instance_action_with_its_events(compute, connection):
    connection.compute.route(
        "GET", f"{SERVER_URL}/os-instance-actions/req-1",
        ok({"instanceAction": {
            "action": "live-migration", "request_id": "req-1",
            "start_time": "2026-01-01T00:00:00", "message": "Error",
            "events": [
                {"event": "compute_live_migration", "result": "Error",
                 "start_time": "2026-01-01T00:00:01",
                 "finish_time": "2026-01-01T00:00:02", "host": "host1",
                 "details": "No valid host was found.",
                 "traceback": "Traceback..."},
                {"event": "conductor_live_migrate", "result": "Success",
                 "start_time": "2026-01-01T00:00:00",
                 "finish_time": "2026-01-01T00:00:01"},
            ],
        }}),
    )

    action = compute.instance_action(SERVER_ID, "req-1")

    assert action is not None
    assert action.message == "Error"
    [failed] = action.failed_events
    assert (failed.event, failed.host, failed.details) == (
        "compute_live_migration", "host1", "No valid host was found.")
    assert connection.compute.sent[0].microversion == "2.84"


def test_an_unknown_instance_action_is_none(compute, connection):
    assert compute.instance_action(SERVER_ID, "req-x") is None


def test_instance_actions_newest_first(compute, connection):
    connection.compute.route(
        "GET", f"{SERVER_URL}/os-instance-actions",
        ok({"instanceActions": [
            {"action": "migrate", "request_id": "req-2",
             "start_time": "2026-01-01T00:01:00", "message": None},
            {"action": "create", "request_id": "req-1",
             "start_time": "2026-01-01T00:00:00", "message": None},
        ]}),
    )

    actions = compute.instance_actions(SERVER_ID)

    assert [a.request_id for a in actions] == ["req-2", "req-1"]
    assert all(a.events == () for a in actions)


# -- prefetch --------------------------------------------------------------


def test_prefetch_reads_the_versions_once_for_every_caller(connection):
    release = threading.Event()

    def slow(sent):
        release.wait(10)
        return version_document("2.95")

    connection.compute.route("GET", "/", slow)
    connection.compute.route("GET", "/os-services", ok({"services": []}))
    compute = nova.NovaCompute(connection, sleep=lambda s: None)

    compute.prefetch()
    compute.prefetch()
    waiting = concurrent.futures.ThreadPoolExecutor(2)
    answers = [waiting.submit(compute.api_versions) for _ in range(2)]
    release.set()

    assert [a.result(10) for a in answers] == [("2.1", "2.95")] * 2
    assert compute.api_versions() == ("2.1", "2.95")
    assert compute.list_services() == []
    assert connection.compute.urls() == ["GET /", "GET /os-services"]
    waiting.shutdown()


def test_the_first_services_read_is_the_prefetched_one_and_only_that(
        connection):
    answers = iter([
        ok({"services": [{"id": "u1", "host": "host1",
                          "binary": "nova-compute", "status": "enabled",
                          "state": "up"}]}),
        ok({"services": [{"id": "u1", "host": "host1",
                          "binary": "nova-compute", "status": "disabled",
                          "state": "up"}]}),
    ])
    connection.compute.route("GET", "/", version_document("2.95"))
    connection.compute.route("GET", "/os-services",
                             lambda sent: next(answers))
    compute = nova.NovaCompute(connection, sleep=lambda s: None)

    compute.prefetch()
    compute.api_versions()
    first = compute.list_services()
    second = compute.list_services()

    assert [s.status for s in first + second] == ["enabled", "disabled"]
    assert connection.compute.urls() == ["GET /", "GET /os-services",
                                         "GET /os-services"]


def test_a_failed_services_prefetch_raises_its_error_once(connection):
    answers = iter([FakeResponse(503), ok({"services": []})])
    connection.compute.route("GET", "/", version_document("2.95"))
    connection.compute.route("GET", "/os-services",
                             lambda sent: next(answers))
    compute = nova.NovaCompute(connection, sleep=lambda s: None,
                               read_retries=0)

    compute.prefetch()
    compute.api_versions()

    # Retried as any read (here: not at all), not read again on top.
    with pytest.raises(exceptions.NovaUnavailable):
        compute.list_services()
    assert compute.list_services() == []
    assert connection.compute.urls() == ["GET /", "GET /os-services",
                                         "GET /os-services"]


def test_a_prefetch_that_failed_raises_its_error_where_the_versions_are_needed(
        connection):
    connection.compute.route("GET", "/", error(401, "unauthorized",
                                               "Authentication required"))
    compute = nova.NovaCompute(connection, sleep=lambda s: None)

    compute.prefetch()

    with pytest.raises(exceptions.AuthenticationFailed):
        compute.api_versions()
    # Sent once more after the 401, as any request.
    assert connection.compute.urls() == ["GET /", "GET /"]
    # The services it was to read next raise the same error, once.
    with pytest.raises(exceptions.AuthenticationFailed):
        compute.list_services()
