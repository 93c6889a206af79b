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
"""Microversions negotiated with the cloud, not pinned: the table, what
NovaCompute sends, and what a run refuses on a cloud too old for it."""

import pytest

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake, microversions, nova
from nova_migrate_flows.compute.microversions import (
    ABORT,
    EVACUATE,
    LIVE_MIGRATE,
    SERVER_GROUPS,
    SERVICES,
    UNSHELVE_TO_HOST,
    negotiate,
)
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.moves import base as moves_base
from nova_migrate_flows.moves import planning, registry
from tests.unit.compute.conftest import FakeConnection, ok, version_document

SERVER_ID = "6f1c2d4e-0b8a-4c55-9d1e-2a3b4c5d6e7f"
ACTION_URL = f"/servers/{SERVER_ID}/action"


@pytest.mark.parametrize("call, cloud_max, sent", [
    (EVACUATE, "2.96", "2.95"),     # 2024.1: the newest the tool speaks
    (EVACUATE, "2.95", "2.95"),     # 2023.2
    (EVACUATE, "2.93", "2.93"),     # Zed: the server keeps its state
    (EVACUATE, "2.87", "2.87"),     # Ussuri, the oldest supported
    (EVACUATE, "2.68", "2.68"),
    (LIVE_MIGRATE, "2.96", "2.68"),
    (LIVE_MIGRATE, "2.87", "2.68"),
    (ABORT, "2.87", "2.65"),
    (SERVICES, "2.53", "2.53"),
    (SERVER_GROUPS, "2.96", "2.64"),
    (SERVER_GROUPS, "2.87", "2.64"),
    (UNSHELVE_TO_HOST, "2.96", "2.91"),
    (UNSHELVE_TO_HOST, "2.91", "2.91"),
])
def test_the_newest_microversion_both_know(call, cloud_max, sent):
    assert negotiate(call, cloud_max) == sent


@pytest.mark.parametrize("call, cloud_max", [
    (UNSHELVE_TO_HOST, "2.90"),
    (EVACUATE, "2.67"),
    (LIVE_MIGRATE, "2.60"),
])
def test_a_cloud_too_old_for_a_call(call, cloud_max):
    with pytest.raises(microversions.TooOld) as caught:
        negotiate(call, cloud_max)

    assert str(caught.value) == (
        f"{call.what} needs compute API microversion {call.oldest}; the "
        f"cloud's maximum is {cloud_max}")


def test_versions_compare_as_numbers_not_text():
    assert microversions.supports("2.100", "2.95")
    assert not microversions.supports("2.9", "2.87")


@pytest.mark.parametrize("cloud_max, error", [
    ("2.96", None),
    ("2.87", None),
    ("2.79", "the cloud's compute API goes up to microversion 2.79; this "
     "tool needs 2.87 (Nova 21 (Ussuri)) or later"),
])
def test_the_oldest_release_supported(cloud_max, error):
    assert microversions.oldest_supported_error(cloud_max) == error


def every_call():
    return [value for value in vars(microversions).values()
            if isinstance(value, microversions.Call)]


def test_every_call_works_on_the_oldest_supported_cloud_but_unshelve():
    oldest = microversions.OLDEST_SUPPORTED
    unsupported = [call.what for call in every_call()
                   if not microversions.supports(oldest, call.oldest)]

    assert unsupported == [UNSHELVE_TO_HOST.what]


@pytest.mark.parametrize("cloud_max, sent", [("2.96", "2.95"),
                                             ("2.93", "2.93")])
def test_an_evacuation_is_sent_at_what_the_cloud_speaks(cloud_max, sent):
    connection = FakeConnection()
    connection.compute.route("GET", "/", version_document(cloud_max))
    connection.compute.route("POST", ACTION_URL, ok(status=202))
    compute = nova.NovaCompute(connection)

    compute.evacuate(SERVER_ID, "host2")
    compute.evacuate(SERVER_ID, None)

    assert [(s.method, s.url, s.microversion)
            for s in connection.compute.sent] == [
        ("GET", "/", None),
        ("POST", ACTION_URL, sent),
        ("POST", ACTION_URL, sent),
    ]


def test_an_unshelve_onto_a_host_is_refused_below_2_91():
    connection = FakeConnection()
    connection.compute.route("GET", "/", version_document("2.90"))
    compute = nova.NovaCompute(connection)

    with pytest.raises(exceptions.Unsupported, match="an unshelve onto a "
                       "given host needs compute API microversion 2.91; "
                       "the cloud's maximum is 2.90"):
        compute.unshelve(SERVER_ID, "host2")

    assert [s.method for s in connection.compute.sent] == ["GET"]


def test_the_calls_every_supported_cloud_has_read_no_version_document():
    connection = FakeConnection()
    connection.compute.route("POST", ACTION_URL, ok(status=202))
    compute = nova.NovaCompute(connection)

    compute.live_migrate(SERVER_ID, None, "auto")

    assert [s.url for s in connection.compute.sent] == [ACTION_URL]


@pytest.mark.parametrize("operation, given", [
    ("host-evacuate-live", {"hosts": ["host1"]}),
    ("live-migrate", {"servers": ["web"]}),
], ids=["host-operation", "single-server"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_cloud_older_than_supported_is_refused(conf, operation, given,
                                                 dry_run):
    cloud = fake.FakeCompute(3, max_microversion="2.79")
    cloud.add_server("host1", name="web")

    with pytest.raises(exceptions.Unsupported) as caught:
        runner_mod.Runner(conf.conf, cloud).run(request_mod.build_request(
            conf.conf, request_mod.Operation(operation), dry_run=dry_run,
            **given))

    assert str(caught.value) == (
        f"{operation}: the cloud's compute API goes up to microversion "
        "2.79; this tool needs 2.87 (Nova 21 (Ussuri)) or later")
    assert caught.value.exit_code == exceptions.ExitCode.BAD_INPUT
    assert cloud.writes == []


class UnshelveOntoHost(moves_base.MoveKind):
    name = "test-unshelve"
    throttle_pool = "cold"
    migration_type = None
    start_task = "x"
    wait_task = "y"
    movable_statuses = frozenset({"ACTIVE"})

    def microversion(self, target_host):
        return "2.91" if target_host else None


@pytest.mark.parametrize("target, refused", [("host2", True),
                                             (None, False)])
def test_a_kind_that_needs_a_newer_cloud_is_refused_before_anything(
        conf, monkeypatch, target, refused):
    kinds = dict(registry.installed(), **{"test-unshelve": UnshelveOntoHost()})
    monkeypatch.setattr(registry, "installed", lambda: kinds)
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.MOVE, servers=["s1"],
        kind="test-unshelve", target_host=target)

    error = planning.microversion_error(request, "2.90")

    if refused:
        assert error == ("move: a test-unshelve onto host2 needs compute "
                         "API microversion 2.91; the cloud's maximum is "
                         "2.90")
    else:
        assert error is None


def test_an_evacuation_below_2_95_keeps_the_servers_running(run_fake):
    cloud, run = run_fake(max_microversion="2.93")
    running = cloud.add_server("host1")
    stopped = cloud.add_server("host1", status="SHUTOFF")
    cloud.set_service("host1", state="down")

    result = run("host-evacuate", hosts=["host1"])

    assert [o["status"] for o in result.outcomes] == ["migrated"] * 2
    assert cloud.servers[running.id].status == "ACTIVE"
    assert cloud.servers[stopped.id].status == "SHUTOFF"
    assert not [w for w in cloud.writes if w[0] == "start_server"]


@pytest.fixture
def run_fake(conf):

    def make(**options):
        cloud = fake.FakeCompute(4, steps=1, **options)

        def run(operation, **given):
            return runner_mod.Runner(conf.conf, cloud).run(
                request_mod.build_request(
                    conf.conf, request_mod.Operation(operation), **given))

        return cloud, run

    return make


def test_nova_34_stops_an_evacuated_server_and_the_tool_restarts_it(
        run_fake):
    cloud, run = run_fake()
    running = cloud.add_server("host1")
    cloud.set_service("host1", state="down")

    result = run("host-evacuate", hosts=["host1"])

    assert result.outcomes[0]["status"] == "migrated"
    assert cloud.servers[running.id].status == "ACTIVE"
    assert [w for w in cloud.writes if w[0] == "start_server"] == [
        ("start_server", running.id)]
    assert constants.EVACUATE == result.outcomes[0]["action"]
