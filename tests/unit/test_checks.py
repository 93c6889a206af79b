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
"""Every preflight check and every verification, one by one."""

import dataclasses

import pytest

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import base, preflight, verify


@pytest.fixture
def cloud():
    return fake.FakeCompute(3)


def check(conf, cloud, plugin, server, operation="live-migrate", **given):
    request = request_mod.build_request(
        conf.conf, request_mod.Operation(operation),
        **({"hosts": [server.host]} if operation.startswith("host-")
           else {"servers": [server.id]}),
        **given)
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)
    verdicts = plugin("test").execute(
        runtime, {server.id: server.to_dict()}, request.to_dict())
    return base.CheckResult(**verdicts[server.id])


@pytest.mark.parametrize(
    ("status", "operation", "expected", "action"),
    [
        ("ACTIVE", "live-migrate", base.PASS, "live-migrate"),
        ("PAUSED", "live-migrate", base.PASS, "live-migrate"),
        ("SHUTOFF", "live-migrate", base.FAIL, None),
        ("SHUTOFF", "host-evacuate-live", base.PASS, "cold-migrate"),
        ("SUSPENDED", "host-evacuate-live", base.SKIP, None),
        ("SHUTOFF", "host-servers-migrate", base.PASS, "cold-migrate"),
        ("ERROR", "host-servers-migrate", base.SKIP, None),
        ("ERROR", "host-evacuate", base.PASS, "evacuate"),
    ],
)
def test_server_state(conf, cloud, status, operation, expected, action):
    server = cloud.add_server("host1", status=status)

    verdict = check(conf, cloud, preflight.ServerStateCheck, server,
                    operation)

    assert verdict.status == expected
    assert verdict.data.get("action") == action


def test_server_state_adopts_a_running_live_migration(conf, cloud):
    server = cloud.add_server("host1", status="MIGRATING",
                              task_state="migrating")

    verdict = check(conf, cloud, preflight.ServerStateCheck, server)

    assert verdict.status == base.PASS
    assert verdict.data == {"action": "live-migrate", "adopt": True}


def test_server_state_refuses_a_busy_server(conf, cloud):
    server = cloud.add_server("host1", task_state="resize_prep")

    assert check(conf, cloud, preflight.ServerStateCheck,
                 server).status == base.FAIL
    assert check(conf, cloud, preflight.ServerStateCheck, server,
                 "host-evacuate-live").status == base.SKIP


def test_server_state_warns_about_a_locked_server(conf, cloud):
    server = cloud.add_server("host1", locked=True, locked_reason="audit")

    verdict = check(conf, cloud, preflight.ServerStateCheck, server)

    assert verdict.status == base.WARN
    assert "locked (audit)" in verdict.message


def test_source_service_must_be_up_to_migrate(conf, cloud):
    server = cloud.add_server("host1")
    cloud.set_service("host1", state="down")

    verdict = check(conf, cloud, preflight.SourceServiceCheck, server)

    assert verdict.status == base.FAIL
    assert "use host-evacuate" in verdict.message


@pytest.mark.parametrize(
    ("state", "force_down", "expected"),
    [("down", False, base.PASS), ("up", False, base.FAIL),
     ("up", True, base.PASS)],
)
def test_source_service_must_be_down_to_evacuate(conf, cloud, state,
                                                 force_down, expected):
    server = cloud.add_server("host1")
    cloud.set_service("host1", state=state)

    verdict = check(conf, cloud, preflight.SourceServiceCheck, server,
                    "host-evacuate", force_down=force_down)

    assert verdict.status == expected


@pytest.mark.parametrize(
    ("target", "change", "message"),
    [
        ("host9", {}, "no nova-compute service there"),
        ("host1", {}, "the server's own host"),
        ("host2", {"state": "down"}, "is down"),
        ("host2", {"status": "disabled", "disabled_reason": "RMA"},
         "disabled (RMA)"),
    ],
)
def test_target_host_refusals(conf, cloud, target, change, message):
    server = cloud.add_server("host1")
    if change:
        cloud.set_service("host2", **change)

    verdict = check(conf, cloud, preflight.TargetHostCheck, server,
                    target_host=target)

    assert verdict.status == base.FAIL
    assert message in verdict.message


def test_target_host_needs_room(conf, cloud):
    server = cloud.add_server("host1", flavor="m1.large")
    cloud.capacity["host2"] = models.HostCapacity("host2", 1, 1024, 10)

    verdict = check(conf, cloud, preflight.TargetHostCheck, server,
                    target_host="host2")

    assert verdict.status == base.FAIL
    assert "no room for m1.large" in verdict.message


@pytest.mark.parametrize(
    ("given", "expected"), [("auto", "auto"), ("true", True),
                            ("false", False)])
def test_storage_decides_block_migration(conf, cloud, given, expected):
    server = cloud.add_server("host1")

    verdict = check(conf, cloud, preflight.StorageCheck, server,
                    block_migration=given)

    assert verdict.data["block_migration"] == expected


def test_storage_reports_volumes(conf, cloud):
    server = cloud.add_server("host1", volume_backed=True,
                              volumes=("v1", "v2"))

    verdict = check(conf, cloud, preflight.StorageCheck, server)

    assert verdict.status == base.WARN
    assert "volume-backed" in verdict.message
    assert "2 Cinder volume(s)" in verdict.message


@pytest.mark.parametrize(
    ("fmt", "storage", "block", "expected"),
    [
        ("iso9660", "local", "auto", base.FAIL),
        ("iso9660", "shared", "auto", base.PASS),
        ("iso9660", "shared", "true", base.FAIL),
        ("vfat", "local", "true", base.PASS),
    ],
)
def test_config_drive(conf, cloud, fmt, storage, block, expected):
    conf.config(group="migration", config_drive_format=fmt,
                instance_storage=storage)
    server = cloud.add_server("host1", config_drive=True)

    verdict = check(conf, cloud, preflight.ConfigDriveCheck, server,
                    block_migration=block)

    assert verdict.status == expected
    if expected == base.FAIL:
        assert "nova_force_config_drive: False" in verdict.message


def test_flavor_disks_warn(conf, cloud):
    server = cloud.add_server("host1", flavor="m1.ephemeral")

    verdict = check(conf, cloud, preflight.FlavorDisksCheck, server)

    assert verdict.status == base.WARN
    assert "5 GB ephemeral and 512 MB swap" in verdict.message


def test_capacity_packs_servers_onto_the_hosts_left(conf, cloud):
    cloud.capacity["host2"] = models.HostCapacity("host2", 4, 8192, 100)
    cloud.capacity["host3"] = models.HostCapacity("host3", 4, 8192, 100)
    servers = [cloud.add_server("host1", flavor="m1.large")
               for _ in range(3)]
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE,
        hosts=["host1"])
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)

    verdicts = preflight.CapacityCheck("capacity").execute(
        runtime, {s.id: s.to_dict() for s in servers}, request.to_dict())

    statuses = sorted(v["status"] for v in verdicts.values())
    assert statuses == [base.FAIL, base.PASS, base.PASS]


@pytest.mark.parametrize(
    ("new", "expected", "message"),
    [("m1.medium", base.PASS, "m1.small -> m1.medium"),
     ("m1.tiny", base.FAIL, "smaller root disk"),
     ("m1.small", base.FAIL, "already has flavor")],
)
def test_flavor_check_for_a_resize(conf, cloud, new, expected, message):
    server = cloud.add_server("host1", flavor="m1.small")

    verdict = check(conf, cloud, preflight.FlavorCheck, server, "resize",
                    flavor=new)

    assert verdict.status == expected
    assert message in verdict.message


def moved(server, after=None, migration=None, **fields):
    return base.Moved(
        server_id=server.id, action=fields.pop("action", "live-migrate"),
        source="host1", before=server.to_dict(),
        after=(after or server).to_dict(),
        migration=migration.to_dict() if migration else None, **fields)


def verify_with(conf, cloud, plugin, result, operation="live-migrate",
                **given):
    request = request_mod.build_request(
        conf.conf, request_mod.Operation(operation), servers=["x"], **given)
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)
    return plugin("test", result.server_id).verify(runtime, result, request)


def record(status, kind="live-migration"):
    return models.Migration(id=7, server_id="s", status=status,
                            migration_type=kind)


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [("completed", "live-migration", base.PASS),
     ("error", "live-migration", base.FAIL),
     ("finished", "migration", base.PASS),
     ("done", "evacuation", base.PASS)],
)
def test_migration_completed(conf, cloud, status, kind, expected):
    server = cloud.add_server("host1")

    verdict = verify_with(conf, cloud, verify.MigrationCompleted,
                          moved(server, migration=record(status, kind)))

    assert verdict.status == expected


@pytest.mark.parametrize(
    ("host", "requested", "expected"),
    [("host2", None, base.PASS), ("host1", None, base.FAIL),
     ("host3", "host2", base.FAIL), ("host2", "host2", base.PASS)],
)
def test_host_changed(conf, cloud, host, requested, expected):
    server = cloud.add_server("host1")
    after = dataclasses.replace(server, host=host)

    verdict = verify_with(conf, cloud, verify.HostChanged,
                          moved(server, after, requested_host=requested))

    assert verdict.status == expected


@pytest.mark.parametrize(
    ("before", "after", "action", "expected"),
    [
        ({}, {}, "live-migrate", base.PASS),
        ({}, {"status": "ERROR"}, "live-migrate", base.FAIL),
        ({}, {"task_state": "migrating"}, "live-migrate", base.FAIL),
        ({"status": "PAUSED", "power_state": 3},
         {"status": "ACTIVE", "power_state": 1}, "live-migrate", base.FAIL),
        ({}, {"status": "VERIFY_RESIZE"}, "cold-migrate", base.PASS),
        ({}, {}, "cold-migrate", base.FAIL),
        ({"status": "ERROR"}, {"status": "SHUTOFF", "power_state": 4},
         "evacuate", base.PASS),
    ],
)
def test_server_state_restored(conf, cloud, before, after, action,
                               expected):
    server = dataclasses.replace(cloud.add_server("host1"), **before)
    moved_to = dataclasses.replace(server, host="host2", **after)

    verdict = verify_with(conf, cloud, verify.ServerStateRestored,
                          moved(server, moved_to, action=action))

    assert verdict.status == expected


def test_flavor_applied(conf, cloud):
    server = cloud.add_server("host1", flavor="m1.small")
    medium = dataclasses.replace(
        server, flavor=cloud.flavors["m1.medium"].to_dict())

    resized = verify_with(conf, cloud, verify.FlavorApplied,
                          moved(server, medium, action="resize"),
                          operation="resize", flavor="m1.medium")
    unchanged = verify_with(conf, cloud, verify.FlavorApplied,
                            moved(server, medium))

    assert resized.status == base.PASS
    assert unchanged.status == base.FAIL
