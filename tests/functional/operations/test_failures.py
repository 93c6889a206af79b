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
"""Failure paths of every kind of move, met on the sandbox's real Nova.

The sandbox's driver fails a cold migration, a resize, the revert of a
resize or an evacuation when the server's metadata says so; a host without
room makes Nova's scheduler find no valid host.
"""

import pytest

from nova_migrate_flows.sandbox import constants
from tests.functional.operations import cli

pytestmark = pytest.mark.functional

FAIL_COLD = {constants.META_COLD_MIGRATION_RESULT: constants.RESULT_FAIL,
             constants.META_COLD_MIGRATION_DELAY: "0.2"}


def migrations(sdk, server_id, kind):
    return [m for m in sdk.compute.migrations(instance_uuid=server_id)
            if m.migration_type == kind]


def test_a_failed_cold_migration_leaves_the_server_safe_on_its_source(
        nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", metadata=FAIL_COLD)

    ran = nmf("move", "--kind", "cold-migrate", server["id"], "host2",
              "--format", "json")

    assert ran.code == 1, ran.err
    result = ran.result_of(server["id"])
    assert result["status"] == "failed"
    assert "told to fail it" in result["reason"]
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status, after.task_state) == (
        "host1", "ACTIVE", None)
    assert [m.status for m in migrations(sdk, server["id"], "migration")
            ] == ["error"]


def test_a_failed_resize_keeps_the_original_flavor(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", flavor="m1.tiny", stopped=True,
                             metadata=FAIL_COLD)

    ran = nmf("resize", server["id"], "m1.small", "--format", "json")

    assert ran.code == 1, ran.err
    assert ran.result_of(server["id"])["status"] == "failed"
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status, after.flavor.name) == (
        "host1", "SHUTOFF", "m1.tiny")
    assert [m.status for m in migrations(sdk, server["id"], "resize")
            ] == ["error"]


def test_a_failed_evacuation_is_reported(nmf, boot_servers, sdk,
                                         sandbox_client):
    (good,) = boot_servers("host4")
    (bad,) = boot_servers("host4", metadata={
        constants.META_EVACUATION_RESULT: constants.RESULT_FAIL})
    sandbox_client.stop_compute("host4")
    cli.wait_until(lambda: next(iter(sdk.compute.services(
        binary="nova-compute", host="host4"))).state == "down", timeout=120)

    ran = nmf("host-evacuate", "host4", "--format", "json")

    assert ran.code == 1, ran.err
    assert ran.result_of(good["id"])["status"] == "migrated"
    failed = ran.result_of(bad["id"])
    assert failed["status"] == "failed"
    assert "told to fail it" in failed["reason"]
    assert [m.status for m in migrations(sdk, bad["id"], "evacuation")
            ] == ["failed"]
    (host,) = ran.json["hosts"]
    assert (host["host"], host["empty"]) == ("host4", False)
    assert [(s["id"], s["status"]) for s in host["left"]] == [
        (bad["id"], "ERROR")]
    assert host["service"] == "disabled"
    assert "incomplete" in host["reason"]


def test_no_valid_host_on_a_candidate_tries_the_next(nmf, boot_servers, sdk,
                                                     sandbox_client):
    (server,) = boot_servers("host1", flavor="m1.tiny")
    # Nova reserves 512 MiB of it: less room than m1.tiny's 512 MiB, and
    # Nova's scheduler finds no valid host.
    sandbox_client.set_host_capacity("host2", memory_mb=1000)

    ran = nmf.configured("[drain]\ncandidate_hosts = host2,host3\n",
                         "host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.result_of(server["id"])["status"] == "migrated"
    assert sdk.compute.get_server(server["id"]).compute_host == "host3"
    tried = sorted((m.id, m.status, m.dest_compute)
                   for m in migrations(sdk, server["id"], "live-migration"))
    assert [(status, dest) for _, status, dest in tried] == [
        ("error", None), ("completed", "host3")]


def test_a_paused_server_is_live_migrated_and_stays_paused(
        nmf, boot_servers, sdk):
    (server,) = boot_servers("host1")
    sdk.compute.pause_server(server["id"])
    cli.wait_until(
        lambda: sdk.compute.get_server(server["id"]).status == "PAUSED")

    ran = nmf("live-migrate", server["id"], "host2", "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.result_of(server["id"])["status"] == "migrated"
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host2", "PAUSED")


def test_a_resize_whose_revert_fails_is_reported_not_safe(
        nmf, boot_servers, sdk, example_plugin):
    # The verification fails, so the tool reverts the resize; Nova fails
    # the revert on the source and leaves the server in ERROR.
    (server,) = boot_servers("host1", flavor="m1.tiny", metadata={
        "nmf_example:fail_verify": "1",
        constants.META_RESIZE_REVERT_RESULT: constants.RESULT_FAIL})

    ran = nmf.configured(
        "[migration]\nverify_tasks = flavor-applied,example-metadata-kept\n",
        "resize", server["id"], "m1.small", "--format", "json")

    assert ran.code == 1, ran.err
    result = ran.result_of(server["id"])
    assert (result["status"], result["destination"]) == (
        "failed", "host1 (ERROR)")
    assert result["reason"].startswith(
        "example-metadata-kept: metadata nmf_example:fail_verify")
    assert result["reason"].endswith(
        "; NOT left safe: it is in ERROR on host1 (see 'openstack server "
        f"event list {server['id']}')")
    assert (f"The revert of the resize of server {server['id']} failed: "
            "Nova left it in ERROR on host1") in ran.err
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host1", "ERROR")
    assert [m.status for m in migrations(sdk, server["id"], "resize")
            ] == ["error"]
