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
"""Host operations against the sandbox's Nova: host-evacuate-live,
host-servers-migrate, resize and host-evacuate."""

import json
import signal

import pytest

from nova_migrate_flows.sandbox import constants
from tests.functional.operations import cli

pytestmark = pytest.mark.functional


def services(sdk):
    return {s.host: s for s in sdk.compute.services(binary="nova-compute")}


def test_evacuate_a_host_of_8_servers_onto_3_others(nmf, boot_servers, sdk):
    servers = boot_servers("host1", count=8,
                           metadata=cli.server_metadata(duration=1))

    ran = nmf("host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 0, ran.err
    assert {r["status"] for r in ran.results} == {"migrated"}
    assert not list(sdk.compute.servers(all_projects=True, host="host1"))
    for server in servers:
        after = sdk.compute.get_server(server["id"])
        assert after.compute_host in {"host2", "host3", "host4"}
        assert after.status == "ACTIVE"
        (migration,) = cli.live_migrations(sdk, server["id"])
        assert migration.status == "completed"
    host1 = services(sdk)["host1"]
    assert host1.status == "disabled"
    assert host1.disabled_reason.startswith(
        "nova-migrate-flows: evacuated by host-evacuate-live")
    assert ran.json["run_id"] in host1.disabled_reason
    (host,) = ran.json["hosts"]
    assert host["empty"] is True and host["service"] == "disabled"


def test_one_failing_server_is_isolated(nmf, boot_servers, sdk):
    good = boot_servers("host1", count=3,
                        metadata=cli.server_metadata(duration=1))
    (bad,) = boot_servers(
        "host1", metadata=cli.server_metadata(result=constants.RESULT_FAIL))

    ran = nmf("host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 1
    assert ran.result_of(bad["id"])["status"] == "failed"
    for server in good:
        assert ran.result_of(server["id"])["status"] == "migrated"
    after = sdk.compute.get_server(bad["id"])
    assert (after.compute_host, after.status) == ("host1", "ACTIVE")
    assert services(sdk)["host1"].status == "disabled"


def test_a_hanging_server_hits_its_timeout(nmf, boot_servers, sdk):
    (quick,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=1))
    (stuck,) = boot_servers("host1", metadata=cli.server_metadata(
        result=constants.RESULT_HANG))

    ran = nmf.configured(
        "[migration]\ncompletion_timeout_min = 3\n"
        "completion_timeout_per_gib = 1\n",
        "host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 1
    assert ran.result_of(quick["id"])["status"] == "migrated"
    assert ran.result_of(stuck["id"])["status"] == "failed"
    (migration,) = cli.live_migrations(sdk, stuck["id"])
    assert migration.status == "cancelled"
    assert sdk.compute.get_server(stuck["id"]).compute_host == "host1"


def test_no_room_is_refused_before_any_change(nmf, boot_servers, sdk,
                                              sandbox_client):
    boot_servers("host1", count=2, flavor="m1.medium")
    for host in ("host2", "host3", "host4"):
        sandbox_client.set_host_capacity(host, vcpus=1, memory_mb=1024,
                                         disk_gb=10)
    before = cli.snapshot(sdk)

    ran = nmf("host-evacuate-live", "host1")

    assert ran.code == 2
    assert "no room for m1.medium" in ran.error_line()
    assert cli.snapshot(sdk) == before


def test_dry_run_sends_no_write(nmf, boot_servers, sdk, sandbox_client):
    boot_servers("host1", count=2)
    boot_servers("host1", stopped=True)
    sandbox_client.reset_stats()

    ran = nmf("host-evacuate-live", "host1", "--dry-run", "--format", "json")

    assert ran.code == 0, ran.err
    counted = sandbox_client.request_stats()["services"]
    writes = [
        request for service in counted.values()
        for request in service["requests"]
        if not request.startswith("GET ")
        and not request.startswith("POST /v3/auth/tokens")
    ]
    assert writes == []
    actions = sorted(row["action"] for row in ran.json["plan"])
    assert actions == ["cold-migrate", "live-migrate", "live-migrate"]


def test_an_interrupt_aborts_in_flight_and_restores_the_service(
        nmf, boot_servers, sdk, sandbox):
    # A minute each: none can end by itself before the abort.
    servers = boot_servers("host1", count=4,
                           metadata=cli.server_metadata(duration=60))
    process = cli.spawn_cli(sandbox.config_file, nmf.config,
                            "host-evacuate-live", "host1", "--format", "json")
    running: list[tuple[str, int]] = []
    cli.wait_until(lambda: running.extend(
        (s["id"], m.id) for s in servers
        for m in cli.live_migrations(sdk, s["id"]) if m.status == "running"
    ) or running)

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)

    assert process.returncode == 3, err
    data = json.loads(out)
    assert data["interrupted"] is True
    server_id, migration_id = running[0]
    assert next(r for r in data["results"]
                if r["server"] == server_id)["status"] != "migrated"
    # [drain] interrupt_action = abort: whatever had started is cancelled.
    cli.wait_until(lambda: all(
        m.status == "cancelled" for s in servers
        for m in cli.live_migrations(sdk, s["id"])), timeout=60)
    assert migration_id in [m.id for m in cli.live_migrations(sdk, server_id)]
    assert "live_migration_cancel" in [
        a.action for a in sdk.compute.server_actions(server_id)]
    for server in servers:
        assert sdk.compute.get_server(server["id"]).compute_host == "host1"
    assert services(sdk)["host1"].status == "enabled"


def test_host_servers_migrate_keeps_each_power_state(nmf, boot_servers, sdk):
    running = boot_servers("host1", count=2)
    stopped = boot_servers("host1", count=2, stopped=True)

    ran = nmf("host-servers-migrate", "host1", "--format", "json")

    assert ran.code == 0, ran.err
    for server in running + stopped:
        assert ran.result_of(server["id"])["status"] == "migrated"
        after = sdk.compute.get_server(server["id"])
        assert after.compute_host != "host1"
        expected = "ACTIVE" if server in running else "SHUTOFF"
        assert after.status == expected
        (migration,) = list(sdk.compute.migrations(
            instance_uuid=server["id"], migration_type="migration"))
        assert migration.status == "confirmed"


def test_host_servers_migrate_no_confirm(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1")

    ran = nmf("host-servers-migrate", "host1", "--no-confirm", "--format",
              "json")

    assert ran.code == 0, ran.err
    assert sdk.compute.get_server(server["id"]).status == "VERIFY_RESIZE"
    sdk.compute.confirm_server_resize(server["id"])
    cli.wait_until(
        lambda: sdk.compute.get_server(server["id"]).status == "ACTIVE")


def test_resize_confirms(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", flavor="m1.tiny")

    ran = nmf("resize", server["id"], "m1.small", "--format", "json")

    assert ran.code == 0, ran.err
    after = sdk.compute.get_server(server["id"])
    assert after.flavor.name == "m1.small"
    assert after.status == "ACTIVE"


def test_resize_reverts_when_a_verification_fails(nmf, boot_servers, sdk,
                                                  example_plugin):
    (server,) = boot_servers("host1", flavor="m1.tiny", metadata={
        "nmf_example:fail_verify": "1"})

    ran = nmf.configured(
        "[migration]\nverify_tasks = flavor-applied,example-metadata-kept\n",
        "resize", server["id"], "m1.small", "--format", "json")

    assert ran.code == 1
    assert ran.result_of(server["id"])["status"] == "failed"
    after = sdk.compute.get_server(server["id"])
    assert (after.flavor.name, after.status, after.compute_host) == (
        "m1.tiny", "ACTIVE", "host1")
    (migration,) = list(sdk.compute.migrations(instance_uuid=server["id"]))
    assert migration.status == "reverted"


def test_host_evacuate_of_a_stopped_host(nmf, boot_servers, sdk,
                                         sandbox_client):
    running = boot_servers("host4", count=2)
    stopped = boot_servers("host4", stopped=True)
    sandbox_client.stop_compute("host4")
    cli.wait_until(lambda: services(sdk)["host4"].state == "down",
                   timeout=60)

    ran = nmf("host-evacuate", "host4", "--format", "json")

    assert ran.code == 0, ran.err
    for server in running + stopped:
        after = sdk.compute.get_server(server["id"])
        assert after.compute_host != "host4"
        assert after.status == ("ACTIVE" if server in running else "SHUTOFF")
    assert services(sdk)["host4"].status == "disabled"


def test_host_evacuate_of_a_live_host_is_refused(nmf, boot_servers, sdk):
    boot_servers("host1")
    before = cli.snapshot(sdk)

    ran = nmf("host-evacuate", "host1")

    assert ran.code == 2
    assert "is up" in ran.error_line()
    assert cli.snapshot(sdk) == before
