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
"""The runner end to end against the in-memory cloud: one server."""

import pytest

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.exceptions import ExitCode


def only(result):
    assert len(result.outcomes) == 1
    return result.outcomes[0]


def test_live_migrate_with_the_scheduler(cloud, run):
    server = cloud.add_server("host1", name="web")

    result = run("live-migrate", servers=["web"])

    outcome = only(result)
    assert result.exit_code == ExitCode.OK
    assert outcome["status"] == "migrated"
    assert outcome["source"] == "host1"
    assert outcome["destination"] == cloud.servers[server.id].host != "host1"
    assert outcome["migration_id"] == cloud.migrations[0].record.id
    assert set(outcome) >= {"server", "name", "source", "destination",
                            "status", "reason", "duration_s",
                            "migration_id"}


def test_live_migrate_to_a_given_host(cloud, run):
    server = cloud.add_server("host1")

    result = run("live-migrate", servers=[server.id], target_host="host3")

    assert only(result)["destination"] == "host3"
    assert cloud.servers[server.id].host == "host3"


def test_block_migration_is_sent_as_decided(cloud, run):
    server = cloud.add_server("host1")
    sent = []
    original = cloud.live_migrate

    def spy(server_id, host, block_migration, force=False):
        sent.append((block_migration, force))
        return original(server_id, host, block_migration, force)

    cloud.live_migrate = spy

    run("live-migrate", servers=[server.id], block_migration="true")

    assert sent == [(True, False)]


def test_force_is_sent_only_with_a_host(cloud, run):
    server = cloud.add_server("host1")
    other = cloud.add_server("host1")
    sent = []
    original = cloud.live_migrate

    def spy(server_id, host, block_migration, force=False):
        sent.append(force)
        return original(server_id, host, block_migration, force)

    cloud.live_migrate = spy

    run("live-migrate", servers=[server.id], force=True)
    run("live-migrate", servers=[other.id], force=True, target_host="host2")

    assert sent == [False, True]


def test_driver_failure_leaves_the_server_on_its_source(cloud, run):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="fail")

    result = run("live-migrate", servers=[server.id])

    outcome = only(result)
    assert result.exit_code == ExitCode.SERVERS_FAILED
    assert outcome["status"] == "failed"
    assert "live-migration failed in the fake driver" in outcome["reason"]
    assert server.id in outcome["reason"]
    assert "source host1" in outcome["reason"]
    assert cloud.servers[server.id].host == "host1"
    assert cloud.servers[server.id].status == "ACTIVE"


@pytest.mark.parametrize(
    ("action", "status", "host"),
    [("abort", "cancelled", "host1"), ("force_complete", "completed",
                                       "host2")],
    ids=["abort", "force-complete"],
)
def test_a_hanging_migration_hits_its_timeout(conf, cloud, run, action,
                                             status, host):
    # The smallest flavor: its completion timeout is a second or two.
    server = cloud.add_server("host1", flavor="m1.tiny")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    conf.config(group="migration", completion_timeout_min=1,
                completion_timeout_per_gib=1, timeout_action=action)

    result = run("live-migrate", servers=[server.id], target_host="host2")

    outcome = only(result)
    assert cloud.migrations[0].record.status == status
    assert cloud.servers[server.id].host == host
    if action == "abort":
        assert outcome["status"] == "failed"
        assert "completion timeout" in outcome["reason"]
    else:
        assert outcome["status"] == "migrated"
        assert "force-completed" in outcome["reason"]


def test_timeout_action_fail_leaves_the_migration_running(conf, cloud, run):
    server = cloud.add_server("host1", flavor="m1.tiny")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    conf.config(group="migration", completion_timeout_min=1,
                completion_timeout_per_gib=1, timeout_action="fail")

    result = run("live-migrate", servers=[server.id])

    assert only(result)["status"] == "failed"
    assert cloud.migrations[0].record.status == "running"


def test_an_in_progress_migration_is_adopted(cloud, run):
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")

    result = run("live-migrate", servers=[server.id])

    outcome = only(result)
    assert outcome["status"] == "migrated"
    assert outcome["destination"] == "host2"
    assert len(cloud.migrations) == 1
    assert cloud.calls["live_migrate"] == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [("SHUTOFF", "only ACTIVE or PAUSED"), ("ERROR", "only ACTIVE")],
    ids=["shutoff", "error"],
)
def test_a_server_that_cannot_move_live_is_refused(cloud, run, status,
                                                   message):
    server = cloud.add_server("host1", status=status)

    with pytest.raises(exceptions.InvalidInput, match=message):
        run("live-migrate", servers=[server.id])
    assert cloud.writes == []


@pytest.mark.parametrize(
    ("target", "message"),
    [("host1", "server's own host"), ("nohost", "no nova-compute service")],
    ids=["same-host", "unknown-host"],
)
def test_a_bad_target_is_refused(cloud, run, target, message):
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.InvalidInput, match=message):
        run("live-migrate", servers=[server.id], target_host=target)
    assert cloud.writes == []


def test_an_unknown_server_is_bad_input(cloud, run):
    with pytest.raises(exceptions.InvalidInput, match="no-such"):
        run("live-migrate", servers=["no-such"])


def test_a_locked_server_moves_with_a_warning(cloud, run):
    server = cloud.add_server("host1", locked=True, locked_reason="owner")

    result = run("live-migrate", servers=[server.id])

    outcome = only(result)
    assert outcome["status"] == "migrated"
    assert "locked (owner)" in outcome["reason"]


def test_iso9660_config_drive_on_local_storage_is_refused(cloud, run):
    server = cloud.add_server("host1", config_drive=True)

    with pytest.raises(exceptions.InvalidInput, match="config_drive_format"
                       " = vfat"):
        run("live-migrate", servers=[server.id])
    assert cloud.writes == []


def test_vfat_config_drive_moves(conf, cloud, run):
    server = cloud.add_server("host1", config_drive=True)
    conf.config(group="migration", config_drive_format="vfat")

    assert only(run("live-migrate", servers=[server.id]))["status"] == (
        "migrated")


def test_resize_confirms_the_new_flavor(cloud, run):
    server = cloud.add_server("host1", flavor="m1.small")

    result = run("resize", servers=[server.id], flavor="m1.medium")

    assert only(result)["status"] == "migrated"
    moved = cloud.servers[server.id]
    assert moved.flavor_info.name == "m1.medium"
    assert moved.status == "ACTIVE"
    assert cloud.migrations[0].record.status == "confirmed"


def lands_with_the_wrong_flavor(cloud, server, monkeypatch):
    """The resize of ``server`` ends with m1.large, whatever was asked."""
    original = cloud._advance_cold

    def wrong_flavor(migration):
        original(migration)
        if migration.record.status == "finished":
            cloud._update_server(server.id, flavor=cloud.flavors[
                "m1.large"].to_dict())

    monkeypatch.setattr(cloud, "_advance_cold", wrong_flavor)


def test_resize_reverts_when_verification_fails(cloud, run, monkeypatch):
    server = cloud.add_server("host1", flavor="m1.small")
    lands_with_the_wrong_flavor(cloud, server, monkeypatch)

    result = run("resize", servers=[server.id], flavor="m1.medium")

    outcome = only(result)
    assert outcome["status"] == "failed"
    assert "flavor-applied" in outcome["reason"]
    assert cloud.migrations[0].record.status == "reverted"
    assert cloud.servers[server.id].host == "host1"
    assert cloud.servers[server.id].flavor_info.name == "m1.small"


def test_a_resize_whose_revert_fails_is_reported_not_safe(
        cloud, run, monkeypatch, caplog):
    server = cloud.add_server("host1", flavor="m1.small")
    cloud.behaviours[server.id] = fake.Behaviour(revert="fail")
    lands_with_the_wrong_flavor(cloud, server, monkeypatch)

    result = run("resize", servers=[server.id], flavor="m1.medium")

    outcome = only(result)
    assert result.exit_code == ExitCode.SERVERS_FAILED
    assert (outcome["status"], outcome["destination"]) == (
        "failed", "host1 (ERROR)")
    assert outcome["reason"] == (
        "flavor-applied: flavor m1.large, expected m1.medium; NOT left safe: "
        f"it is in ERROR on host1 (see 'openstack server event list "
        f"{server.id}')")
    assert [m.record.status for m in cloud.migrations] == ["error"]
    assert cloud.servers[server.id].status == "ERROR"
    assert (f"The revert of the resize of server {server.id} failed: Nova "
            "left it in ERROR on host1") in caplog.messages


def test_resize_to_a_smaller_disk_is_refused(cloud, run):
    server = cloud.add_server("host1", flavor="m1.medium")

    with pytest.raises(exceptions.InvalidInput, match="smaller root disk"):
        run("resize", servers=[server.id], flavor="m1.small")


def test_resize_to_an_unknown_flavor_is_bad_input(cloud, run):
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.InvalidInput, match="flavor 'm9'"):
        run("resize", servers=[server.id], flavor="m9")


def test_no_room_anywhere_is_refused(cloud, run):
    for host in ("host2", "host3", "host4"):
        cloud.capacity[host] = models.HostCapacity(host, 0, 0, 0)
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.InvalidInput, match="no room"):
        run("live-migrate", servers=[server.id])


def test_a_dry_run_of_one_server_changes_nothing(cloud, run):
    server = cloud.add_server("host1", config_drive=True)

    result = run("live-migrate", servers=[server.id], dry_run=True)

    assert cloud.writes == []
    assert result.dry_run
    (row,) = result.to_json()["plan"]
    assert row["checks"]["config-drive"]["status"] == "fail"
    assert result.exit_code == ExitCode.BAD_INPUT
