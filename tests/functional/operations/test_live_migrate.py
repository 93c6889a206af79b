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
"""live-migrate and the migration commands, against the sandbox's Nova."""

import json

import pytest

from nova_migrate_flows.sandbox import constants
from tests.functional.operations import cli

pytestmark = pytest.mark.functional


def test_live_migrate_with_the_scheduler(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", name_prefix="lm-sched")

    ran = nmf("live-migrate", server["name"], "--format", "json")

    assert ran.code == 0, ran.err
    result = ran.result_of(server["id"])
    assert result["status"] == "migrated"
    assert result["source"] == "host1"
    moved = sdk.compute.get_server(server["id"])
    assert moved.compute_host == result["destination"] != "host1"
    assert moved.status == "ACTIVE"
    (migration,) = cli.live_migrations(sdk, server["id"])
    assert migration.status == "completed"
    assert migration.id == result["migration_id"]


def test_live_migrate_to_a_given_host(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1")

    ran = nmf("live-migrate", server["id"], "host3", "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.result_of(server["id"])["destination"] == "host3"
    assert sdk.compute.get_server(server["id"]).compute_host == "host3"


def test_block_migration_copies_the_disk(nmf, boot_servers, sdk, sandbox):
    (server,) = boot_servers("host1", flavor="m1.tiny",
                             metadata=cli.server_metadata(duration=3))
    process = cli.spawn_cli(sandbox.config_file, nmf.config, "live-migrate",
                            "--block-migrate", server["id"], "host2",
                            "--format", "json")
    # The sandbox's driver reports disk progress only when Nova asked it
    # for a block migration.
    disk_totals: list[int] = []
    cli.wait_until(lambda: disk_totals.extend(
        m.disk_total_bytes or 0
        for m in sdk.compute.server_migrations(server["id"])) or any(
            disk_totals))
    out, err = process.communicate(timeout=120)

    assert process.returncode == 0, err
    (result,) = json.loads(out)["results"]
    assert (result["server"], result["status"]) == (server["id"], "migrated")
    assert max(disk_totals) == 1024 ** 3  # m1.tiny's 1 GiB root disk
    assert sdk.compute.get_server(server["id"]).compute_host == "host2"


def test_a_driver_failure_leaves_the_server_on_its_source(nmf, boot_servers,
                                                          sdk):
    (server,) = boot_servers(
        "host1", metadata=cli.server_metadata(result=constants.RESULT_FAIL))

    ran = nmf("live-migrate", server["id"], "--format", "json")

    assert ran.code == 1, ran.err
    result = ran.result_of(server["id"])
    assert result["status"] == "failed"
    assert "Nova:" in result["reason"]
    assert server["id"] in result["reason"]
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host1", "ACTIVE")
    assert result["destination"] == "host1 (ACTIVE)"


@pytest.mark.parametrize(
    ("action", "migration_status", "host"),
    [("abort", "cancelled", "host1"),
     ("force_complete", "completed", "host2")],
    ids=["abort", "force-complete"],
)
def test_a_hanging_migration_hits_its_timeout(nmf, boot_servers, sdk,
                                              action, migration_status,
                                              host):
    (server,) = boot_servers(
        "host1", metadata=cli.server_metadata(result=constants.RESULT_HANG))

    ran = nmf.configured(
        "[migration]\ncompletion_timeout_min = 3\n"
        "completion_timeout_per_gib = 1\n"
        f"timeout_action = {action}\n",
        "live-migrate", server["id"], "host2", "--format", "json")

    (migration,) = cli.live_migrations(sdk, server["id"])
    assert migration.status == migration_status
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == (host, "ACTIVE")
    result = ran.result_of(server["id"])
    if action == "abort":
        assert ran.code == 1
        assert result["status"] == "failed"
        assert "completion timeout" in result["reason"]
    else:
        assert ran.code == 0, ran.err
        assert result["status"] == "migrated"
        assert "force-completed" in result["reason"]


def test_an_abort_the_compute_drops_is_sent_again(nmf, boot_servers, sdk):
    """Nova takes the abort but its compute drops it (as one that comes
    before the driver has a job to abort): the migration would run to its
    end; it is aborted again ``abort_retry_interval`` seconds later."""
    metadata = cli.server_metadata(result=constants.RESULT_HANG)
    metadata[constants.META_LIVE_MIGRATION_ABORTS_LOST] = "1"
    (server,) = boot_servers("host1", metadata=metadata)

    ran = nmf.configured(
        "[migration]\ncompletion_timeout_min = 3\n"
        "completion_timeout_per_gib = 1\n"
        "abort_retry_interval = 2\n",
        "live-migrate", server["id"], "host2", "--format", "json")

    assert ran.code == 1, ran.err
    assert "completion timeout" in ran.result_of(server["id"])["reason"]
    (migration,) = cli.live_migrations(sdk, server["id"])
    assert migration.status == "cancelled"
    actions = [a.action for a in sdk.compute.server_actions(server["id"])]
    assert actions.count("live_migration_cancel") == 2
    assert sdk.compute.get_server(server["id"]).compute_host == "host1"


def test_an_in_progress_migration_is_adopted(nmf, boot_servers, sdk):
    (server,) = boot_servers(
        "host1", metadata=cli.server_metadata(duration=4))
    sdk.compute.live_migrate_server(server["id"], host="host2",
                                    block_migration="auto")

    ran = nmf("live-migrate", server["id"], "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.result_of(server["id"])["destination"] == "host2"
    assert len(cli.live_migrations(sdk, server["id"])) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["live-migrate", "no-such-server"], "no server has this name"),
        (["live-migrate", "0b5a2f7e-0000-4000-8000-00000000000"],
         "no server has this name"),
        (["live-migrate", "{server}", "host1"], "server's own host"),
        (["live-migrate", "{server}", "host9"], "no nova-compute service"),
        (["live-migrate", "{stopped}"], "only ACTIVE or PAUSED"),
    ],
    ids=["unknown-server", "malformed-id", "same-host", "unknown-host",
         "not-active"],
)
def test_bad_input_exits_2_and_changes_nothing(nmf, boot_servers, sdk,
                                               argv, message):
    (server,) = boot_servers("host1")
    (stopped,) = boot_servers("host1", stopped=True)
    before = cli.snapshot(sdk)

    ran = nmf(*[a.format(server=server["id"], stopped=stopped["id"])
                for a in argv])

    assert ran.code == 2
    assert message in ran.error_line()
    assert cli.snapshot(sdk) == before


def test_a_misspelt_task_exits_2_and_changes_nothing(nmf, boot_servers,
                                                     sdk):
    (server,) = boot_servers("host1")
    before = cli.snapshot(sdk)

    ran = nmf.configured("[migration]\npreflight_tasks = server-state,"
                         "sorage\n", "live-migrate", server["id"])

    assert ran.code == 2
    assert "'sorage'" in ran.error_line()
    assert cli.snapshot(sdk) == before


def test_an_iso9660_config_drive_is_refused_with_the_remedy(nmf,
                                                            boot_servers,
                                                            sdk):
    (server,) = boot_servers("host1", config_drive=True)
    before = cli.snapshot(sdk)

    ran = nmf("live-migrate", server["id"])

    assert ran.code == 2
    assert "config_drive_format = vfat" in ran.error_line()
    assert cli.snapshot(sdk) == before


def test_a_third_party_verify_task_runs(nmf, boot_servers, sdk,
                                        example_plugin):
    (good,) = boot_servers("host1", metadata={"owner": "ops"})
    (bad,) = boot_servers("host1", metadata={"nmf_example:fail_verify": "1"})
    verify = ("[migration]\nverify_tasks = migration-completed,"
              "host-changed,example-metadata-kept\n")

    ran_good = nmf.configured(verify, "live-migrate", good["id"],
                              "--format", "json")
    ran_bad = nmf.configured(verify, "live-migrate", bad["id"],
                             "--format", "json")

    assert ran_good.code == 0, ran_good.err
    assert "example-metadata-kept: " + good["id"] in ran_good.err
    assert ran_bad.code == 1
    result = ran_bad.result_of(bad["id"])
    assert result["status"] == "failed"
    assert "example-metadata-kept: metadata nmf_example:fail_verify" in \
        result["reason"]


def test_migration_commands(nmf, boot_servers, sdk):
    (server,) = boot_servers(
        "host1", metadata=cli.server_metadata(result=constants.RESULT_HANG))
    sdk.compute.live_migrate_server(server["id"], host="host2",
                                    block_migration="auto")
    migration = cli.wait_for_migration(sdk, server["id"], "running")

    listed = nmf("migration-list", "--server", server["id"], "--format",
                 "json")
    shown = nmf("migration-show", server["id"], str(migration.id),
                "--format", "json")
    table = nmf("migration-list", "--host", "host1", "--status", "running")
    aborted = nmf("migration-abort", server["id"], str(migration.id))

    assert listed.code == shown.code == table.code == aborted.code == 0
    (row,) = listed.json["migrations"]
    assert (row["id"], row["type"]) == (migration.id, "live-migration")
    assert shown.json["memory_total"] >= 1
    assert "| Source Compute |" in table.out and server["id"] in table.out
    cli.wait_for_migration(sdk, server["id"], "cancelled")
    assert sdk.compute.get_server(server["id"]).compute_host == "host1"


def test_migration_force_complete(nmf, boot_servers, sdk):
    (server,) = boot_servers(
        "host1", metadata=cli.server_metadata(result=constants.RESULT_HANG))
    sdk.compute.live_migrate_server(server["id"], host="host2",
                                    block_migration="auto")
    migration = cli.wait_for_migration(sdk, server["id"], "running")

    ran = nmf("migration-force-complete", server["id"], str(migration.id))

    assert ran.code == 0, ran.err
    cli.wait_for_migration(sdk, server["id"], "completed")
    assert sdk.compute.get_server(server["id"]).compute_host == "host2"
