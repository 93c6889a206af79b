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
"""The records built from Nova's JSON."""

import dataclasses
import datetime
from typing import Any

import pytest

from nova_migrate_flows.compute import models

SERVER_ID = "6f1c2d4e-0b8a-4c55-9d1e-2a3b4c5d6e7f"


def server_json(**fields: Any) -> dict[str, Any]:
    """A server as ``GET /servers/{id}`` shows it at 2.73."""
    data = {
        "id": SERVER_ID,
        "name": "web-1",
        "status": "ACTIVE",
        "OS-EXT-SRV-ATTR:host": "host1",
        "OS-EXT-SRV-ATTR:hypervisor_hostname": "host1.example",
        "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:vm_state": "active",
        "OS-EXT-STS:power_state": 1,
        "flavor": {"original_name": "m1.ephemeral", "ram": 2048, "vcpus": 1,
                   "disk": 10, "ephemeral": 5, "swap": 512,
                   "extra_specs": {"hw:cpu_policy": "shared"}},
        "image": {"id": "a1b2", "links": []},
        "os-extended-volumes:volumes_attached": [
            {"id": "vol-1", "delete_on_termination": False},
            {"id": "vol-2", "delete_on_termination": True},
        ],
        "locked": True,
        "locked_reason": "maintenance",
        "config_drive": "True",
        "tenant_id": "demo",
        "metadata": {"role": "web"},
    }
    data.update(fields)
    return data


def migration(**fields: Any) -> models.Migration:
    return dataclasses.replace(
        models.Migration(id=1, server_id=SERVER_ID, status="running"),
        **fields,
    )


# -- flavors ---------------------------------------------------------------

def test_flavor_from_the_flavor_embedded_in_a_server():
    flavor = models.Flavor.from_server_flavor(server_json()["flavor"])

    assert flavor == models.Flavor(
        "m1.ephemeral", ram_mb=2048, vcpus=1, disk_gb=10, ephemeral_gb=5,
        swap_mb=512, id=None,
    )


def test_flavor_extra_specs_are_read_but_not_compared():
    flavor = models.Flavor.from_server_flavor(server_json()["flavor"])
    listed = models.Flavor.from_flavor({
        "name": "gpu", "ram": 512, "extra_specs": {"resources:VGPU": 1}})

    assert flavor.extra_specs == {"hw:cpu_policy": "shared"}
    assert listed.extra_specs == {"resources:VGPU": "1"}
    assert models.Flavor.from_dict(flavor.to_dict()).extra_specs == \
        flavor.extra_specs


@pytest.mark.parametrize("body", [
    {"policy": "anti-affinity", "rules": {"max_server_per_host": 2}},
    {"policies": ["anti-affinity"], "rules": {"max_server_per_host": "2"}},
], ids=["2.64", "older"])
def test_server_group_from_the_api(body):
    group = models.ServerGroup.from_api(dict(
        body, id="g1", name="web", members=["s1", "s2"], project_id="p"))

    assert (group.id, group.name, group.policy, group.members) == (
        "g1", "web", models.ANTI_AFFINITY, ("s1", "s2"))
    assert group.hard and group.max_per_host == 2
    assert not dataclasses.replace(group, policy="soft-affinity").hard


def test_flavor_from_an_embedded_flavor_without_original_name():
    flavor = models.Flavor.from_server_flavor({"name": "old", "ram": 64})

    assert (flavor.name, flavor.ram_mb, flavor.vcpus, flavor.disk_gb) == (
        "old", 64, 0, 0)


@pytest.mark.parametrize(
    ("swap", "expected"), [("", 0), (0, 0), (1024, 1024)],
    ids=["empty-string", "zero", "set"],
)
def test_flavor_from_the_flavors_api(swap, expected):
    flavor = models.Flavor.from_flavor({
        "id": "5", "name": "m1.ephemeral", "ram": 2048, "vcpus": 1,
        "disk": 10, "OS-FLV-EXT-DATA:ephemeral": 5, "swap": swap,
    })

    assert flavor == models.Flavor("m1.ephemeral", 2048, 1, 10,
                                   ephemeral_gb=5, swap_mb=expected, id="5")


# -- servers ---------------------------------------------------------------

def test_server_from_the_api():
    server = models.Server.from_api(server_json())

    assert server.id == SERVER_ID
    assert (server.name, server.status, server.host) == (
        "web-1", "ACTIVE", "host1")
    assert server.hypervisor_hostname == "host1.example"
    assert (server.task_state, server.vm_state, server.power_state) == (
        None, "active", models.POWER_STATE_RUNNING)
    assert (server.locked, server.locked_reason) == (True, "maintenance")
    assert server.config_drive is True
    assert server.volumes == ("vol-1", "vol-2")
    assert server.volume_backed is False
    assert server.project_id == "demo"
    assert server.metadata == {"role": "web"}
    assert server.flavor_info == models.Flavor(
        "m1.ephemeral", 2048, 1, 10, ephemeral_gb=5, swap_mb=512)


@pytest.mark.parametrize("image", ["", None], ids=["empty-string", "none"])
def test_a_server_booted_from_a_volume_has_no_image(image):
    server = models.Server.from_api(server_json(image=image))

    assert server.volume_backed is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [("True", True), ("true", True), ("1", True), (True, True),
     ("", False), (None, False), ("False", False)],
    ids=["True", "true", "1", "bool", "empty", "none", "False"],
)
def test_server_config_drive(value, expected):
    assert models.Server.from_api(
        server_json(config_drive=value)).config_drive is expected


def test_server_from_a_sparse_answer_has_defaults():
    server = models.Server.from_api({"id": SERVER_ID})

    assert (server.name, server.status, server.host) == ("", "UNKNOWN", None)
    assert server.volumes == ()
    assert server.metadata == {}
    assert server.locked is False
    assert server.flavor_info == models.Flavor("", 0, 0, 0)


def test_server_round_trips_through_a_plain_dict():
    server = models.Server.from_api(server_json())

    data = server.to_dict()

    assert isinstance(data["flavor"], dict)
    assert models.Server.from_dict(data) == server


def test_from_dict_ignores_keys_the_record_does_not_have():
    data = models.Service("u1", "host1", "nova-compute", "enabled",
                          "up").to_dict()

    restored = models.Service.from_dict({**data, "added_later": 1})

    assert restored == models.Service.from_dict(data)


def test_server_metadata_is_a_copy_of_the_answer():
    data = server_json()

    server = models.Server.from_api(data)
    data["metadata"]["role"] = "changed"

    assert server.metadata == {"role": "web"}


# -- migrations ------------------------------------------------------------

def test_migration_from_os_migrations():
    record = models.Migration.from_api({
        "id": 42, "uuid": "m-uuid", "instance_uuid": SERVER_ID,
        "status": "finished", "migration_type": "resize",
        "source_compute": "host1", "dest_compute": "host2",
        "source_node": "n1", "dest_node": "n2", "dest_host": "10.0.0.2",
        "old_instance_type_id": 2, "new_instance_type_id": 3,
        "created_at": "2026-01-01T00:00:00.000000",
        "updated_at": "2026-01-01T00:00:09.000000",
    })

    assert record == models.Migration(
        id=42, server_id=SERVER_ID, status="finished",
        migration_type="resize", source_compute="host1",
        dest_compute="host2", source_node="n1", dest_node="n2",
        dest_host="10.0.0.2", old_flavor="2", new_flavor="3",
        created_at="2026-01-01T00:00:00.000000",
        updated_at="2026-01-01T00:00:09.000000", uuid="m-uuid",
    )
    assert record.bytes_total is None
    assert record.percent is None


def test_migration_from_a_server_migration_is_live_with_progress():
    record = models.Migration.from_api({
        "id": "7", "server_uuid": SERVER_ID, "status": "running",
        "memory_total_bytes": 800, "memory_processed_bytes": 300,
        "memory_remaining_bytes": 500, "disk_total_bytes": 200,
        "disk_processed_bytes": 100, "disk_remaining_bytes": 100,
    })

    assert record.id == 7
    assert record.server_id == SERVER_ID
    assert record.migration_type == "live-migration"
    assert (record.bytes_processed, record.bytes_total) == (400, 1000)
    assert record.percent == 40.0


def test_migration_without_a_server_takes_the_one_given():
    record = models.Migration.from_api({"id": 1, "status": "queued"},
                                       server_id="given")

    assert record.server_id == "given"
    assert record.migration_type is None


@pytest.mark.parametrize(
    ("status", "final", "failed"),
    [("accepted", False, False), ("queued", False, False),
     ("running", False, False), ("finished", False, False),
     ("completed", True, False), ("confirmed", True, False),
     ("reverted", True, False), ("done", True, False),
     ("error", True, True), ("failed", True, True),
     ("cancelled", True, True)],
    ids=lambda value: str(value),
)
def test_migration_final_and_failed_statuses(status, final, failed):
    record = migration(status=status)

    assert record.is_final is final
    assert record.failed is failed


@pytest.mark.parametrize(
    ("fields", "percent"),
    [
        ({}, None),
        ({"memory_total": 0, "memory_processed": 0}, None),
        ({"memory_total": 100}, None),
        ({"memory_total": 100, "memory_processed": 25}, 25.0),
        ({"memory_total": 100, "memory_processed": 50, "disk_total": 100,
          "disk_processed": 50}, 50.0),
        ({"memory_total": 100, "memory_processed": 250}, 100.0),
    ],
    ids=["no-progress", "zero-total", "nothing-processed", "memory",
         "memory-and-disk", "capped"],
)
def test_migration_percent(fields, percent):
    assert migration(**fields).percent == percent


def test_with_progress_takes_only_the_progress_fields():
    record = migration(status="completed", dest_compute="host2")
    sample = migration(status="running", dest_compute="elsewhere",
                       memory_total=10, memory_processed=4,
                       memory_remaining=6, disk_total=2, disk_processed=1,
                       disk_remaining=1)

    merged = record.with_progress(sample)

    assert (merged.status, merged.dest_compute) == ("completed", "host2")
    assert (merged.bytes_processed, merged.bytes_total) == (5, 12)
    assert merged.memory_remaining == 6
    assert merged.disk_remaining == 1


def test_migration_statuses_are_consistent():
    assert not (models.MIGRATION_DONE_STATUSES
                & models.MIGRATION_FAILED_STATUSES)
    assert not (models.LIVE_MIGRATION_ACTIVE_STATUSES
                & models.MIGRATION_FINAL_STATUSES)


# -- services, capacity, actions --------------------------------------------

@pytest.mark.parametrize(
    ("status", "state", "enabled", "up"),
    [("enabled", "up", True, True), ("disabled", "down", False, False)],
    ids=["enabled-up", "disabled-down"],
)
def test_service_from_the_api(status, state, enabled, up):
    service = models.Service.from_api({
        "id": "6a1b", "host": "host1", "binary": "nova-compute",
        "status": status, "state": state, "disabled_reason": None,
        "forced_down": not up, "zone": "nova",
    })

    assert (service.id, service.host) == ("6a1b", "host1")
    assert (service.enabled, service.up) == (enabled, up)
    assert service.forced_down is (not up)


def test_service_id_is_a_string_for_old_integer_ids():
    assert models.Service.from_api({"id": 12, "host": "h"}).id == "12"


@pytest.mark.parametrize(
    ("flavor", "fits"),
    [
        (models.Flavor("f", 1024, 2, 8), True),
        (models.Flavor("f", 1025, 2, 8), False),
        (models.Flavor("f", 1024, 3, 8), False),
        (models.Flavor("f", 1024, 2, 9), False),
        (models.Flavor("f", 1024, 2, 5, ephemeral_gb=3), True),
        (models.Flavor("f", 1024, 2, 5, ephemeral_gb=3, swap_mb=1), False),
        (models.Flavor("f", 1024, 2, 6, swap_mb=2048), True),
        (models.Flavor("f", 1024, 2, 6, swap_mb=2049), False),
    ],
    ids=["exact", "ram", "vcpus", "disk", "ephemeral", "swap-rounds-up",
         "swap-whole-gib", "swap-over"],
)
def test_host_capacity_fits(flavor, fits):
    assert models.HostCapacity("h", vcpus=2, ram_mb=1024,
                               disk_gb=8).fits(flavor) is fits


def test_host_capacity_minus_a_flavor():
    capacity = models.HostCapacity("h", vcpus=8, ram_mb=8192, disk_gb=100)
    flavor = models.Flavor("f", 2048, 2, 20, ephemeral_gb=5, swap_mb=512)

    assert capacity.minus(flavor) == models.HostCapacity(
        "h", vcpus=6, ram_mb=6144, disk_gb=100 - 20 - 5 - 1)


def test_failed_events_of_an_instance_action():
    action = models.InstanceAction(
        action="live-migration", request_id="req-1", start_time=None,
        message="Error",
        events=(
            {"event": "conductor_live_migrate", "result": "Success",
             "start_time": None, "finish_time": None},
            {"event": "compute_live_migration", "result": "Error",
             "start_time": None, "finish_time": None, "details": "boom"},
            {"event": "compute_check", "result": "error",
             "start_time": None, "finish_time": None},
            {"event": "compute_pending", "result": None,
             "start_time": None, "finish_time": None},
        ),
    )

    assert [(e.event, e.details) for e in action.failed_events] == [
        ("compute_live_migration", "boom"), ("compute_check", None)]


# -- time ------------------------------------------------------------------

UTC = datetime.UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2026-01-01T10:00:00.000000",
         datetime.datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01T10:00:00Z",
         datetime.datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01T12:00:00+02:00",
         datetime.datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ],
    ids=["none", "empty", "naive-is-utc", "zulu", "offset"],
)
def test_parse_time(value, expected):
    parsed = models.parse_time(value)

    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None
