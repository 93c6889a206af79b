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
"""FakeCompute behaves like Nova where the project relies on it."""

import email.utils

import pytest

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import fake, models

HOSTS = ["host1", "host2", "host3"]
FULL = models.HostCapacity("", vcpus=8, ram_mb=16384, disk_gb=200)


@pytest.fixture
def cloud() -> fake.FakeCompute:
    """Three hosts with room for a few servers each, two steps a move."""
    return fake.FakeCompute(HOSTS, vcpus=FULL.vcpus, ram_mb=FULL.ram_mb,
                            disk_gb=FULL.disk_gb, steps=2)


def room(cloud: fake.FakeCompute, host: str) -> tuple[int, int, int]:
    capacity = cloud.host_capacities()[host]
    return capacity.vcpus, capacity.ram_mb, capacity.disk_gb


def full() -> tuple[int, int, int]:
    return FULL.vcpus, FULL.ram_mb, FULL.disk_gb


def less(flavor: str, times: int = 1) -> tuple[int, int, int]:
    """The room of an empty host minus ``times`` servers of ``flavor``."""
    capacity = FULL
    for _ in range(times):
        capacity = capacity.minus(fake.FLAVORS[flavor])
    return capacity.vcpus, capacity.ram_mb, capacity.disk_gb


def statuses(cloud: fake.FakeCompute, server_id: str, reads: int
             ) -> list[str]:
    """The status of the server's newest migration over ``reads`` reads."""
    return [cloud.list_migrations(server_id=server_id)[0].status
            for _ in range(reads)]


def newest(cloud: fake.FakeCompute, server_id: str) -> models.Migration:
    """The server's newest migration, read without moving time on."""
    return next(m.record for m in reversed(cloud.migrations)
                if m.record.server_id == server_id)


# -- building the cloud ----------------------------------------------------

def test_hosts_by_count_are_named_and_up():
    cloud = fake.FakeCompute(2)

    services = cloud.list_services()

    assert [s.host for s in services] == ["host1", "host2"]
    assert all(s.up and s.enabled for s in services)
    assert len({s.id for s in services}) == 2


def test_add_server_takes_its_room(cloud):
    server = cloud.add_server("host1", name="db", flavor="m1.ephemeral")

    assert (server.host, server.name, server.status) == ("host1", "db",
                                                         "ACTIVE")
    assert server.flavor_info == fake.FLAVORS["m1.ephemeral"]
    assert room(cloud, "host1") == less("m1.ephemeral")
    assert room(cloud, "host2") == full()


@pytest.mark.parametrize(
    ("status", "vm_state", "power_state"),
    [("ACTIVE", "active", models.POWER_STATE_RUNNING),
     ("PAUSED", "paused", models.POWER_STATE_PAUSED),
     ("SHUTOFF", "stopped", models.POWER_STATE_SHUTDOWN)],
    ids=["active", "paused", "shutoff"],
)
def test_add_server_states(cloud, status, vm_state, power_state):
    server = cloud.add_server("host1", status=status)

    assert (server.vm_state, server.power_state) == (vm_state, power_state)


def test_add_server_to_an_unknown_host(cloud):
    with pytest.raises(ValueError, match="no host"):
        cloud.add_server("nowhere")


# -- servers ---------------------------------------------------------------

def test_find_server_by_id_or_unique_name(cloud):
    web = cloud.add_server("host1", name="web")
    cloud.add_server("host2", name="db")

    assert cloud.find_server(web.id) == web
    assert cloud.find_server("web") == web


@pytest.mark.parametrize(
    ("names", "message"),
    [(["db"], "no server has this name"),
     (["web", "web"], "2 servers have this name")],
    ids=["unknown", "ambiguous"],
)
def test_find_server_needs_exactly_one(cloud, names, message):
    for name in names:
        cloud.add_server("host1", name=name)

    with pytest.raises(exceptions.InvalidInput, match=message):
        cloud.find_server("web")


def test_get_an_unknown_server(cloud):
    with pytest.raises(exceptions.NotFound):
        cloud.get_server("nope")


def test_list_servers_of_a_host(cloud):
    one = cloud.add_server("host1")
    two = cloud.add_server("host1")
    cloud.add_server("host2")

    assert {s.id for s in cloud.list_servers("host1")} == {one.id, two.id}
    assert cloud.calls["list_servers"] == 1


def seen(server: models.Server) -> tuple[str, str | None]:
    return server.status, server.task_state


def test_stop_and_start_pass_through_powering_off_and_on(cloud):
    server = cloud.add_server("host1")

    cloud.stop_server(server.id)
    stopping = cloud.servers[server.id]
    stopped = cloud.get_server(server.id)
    cloud.start_server(server.id)
    starting = cloud.servers[server.id]
    started = cloud.get_server(server.id)

    assert seen(stopping) == ("ACTIVE", "powering-off")
    assert (stopped.status, stopped.task_state, stopped.power_state) == (
        "SHUTOFF", None, models.POWER_STATE_SHUTDOWN)
    assert seen(starting) == ("SHUTOFF", "powering-on")
    assert (started.status, started.task_state, started.power_state) == (
        "ACTIVE", None, models.POWER_STATE_RUNNING)
    assert cloud.writes == [("stop_server", server.id),
                            ("start_server", server.id)]


@pytest.mark.parametrize(("status", "action"), [
    ("ACTIVE", "start_server"), ("SHUTOFF", "stop_server"),
    ("PAUSED", "stop_server"),
], ids=["start-running", "stop-stopped", "stop-paused"])
def test_a_power_action_in_the_wrong_state_is_a_conflict(cloud, status,
                                                         action):
    server = cloud.add_server("host1", status=status)

    with pytest.raises(exceptions.Conflict, match="vm_state") as raised:
        getattr(cloud, action)(server.id)

    assert raised.value.status_code == 409


def test_a_server_powering_off_cannot_be_started(cloud):
    server = cloud.add_server("host1")
    cloud.stop_server(server.id)

    with pytest.raises(exceptions.Conflict, match="task_state powering-off"):
        cloud.stop_server(server.id)


# -- live migration --------------------------------------------------------

def test_live_migration_progresses_one_step_per_read(cloud):
    server = cloud.add_server("host1")

    result = cloud.live_migrate(server.id, "host2", "auto")

    assert newest(cloud, server.id).status == "accepted"
    assert seen(cloud.servers[server.id]) == ("MIGRATING", "migrating")
    assert statuses(cloud, server.id, 3) == [
        "preparing", "running", "running"]
    assert cloud.get_server(server.id).status == "MIGRATING"
    assert statuses(cloud, server.id, 1) == ["completed"]
    moved = cloud.get_server(server.id)
    assert (moved.host, moved.hypervisor_hostname) == ("host2", "host2")
    assert (moved.status, moved.task_state) == ("ACTIVE", None)
    assert result.request_id == cloud.instance_actions(
        server.id)[0].request_id


def test_live_migration_reports_growing_progress(cloud):
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")

    processed = []
    for _ in range(4):
        cloud.list_migrations(server_id=server.id)
        [record] = cloud.server_migrations(server.id)
        processed.append(record.memory_processed)

    total = fake.FLAVORS["m1.small"].ram_mb * fake.MIB
    assert processed == [1, 1, total // 2, total]


@pytest.mark.parametrize("steps", [3, 5], ids=["3-steps", "5-steps"])
def test_progress_grows_with_every_step_of_a_slower_server(cloud, steps):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(steps=steps)
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, 2)  # preparing, running

    processed = []
    for _ in range(steps):
        cloud.list_migrations(server_id=server.id)
        processed.append(newest(cloud, server.id).memory_processed)

    assert processed == sorted(set(processed))
    assert processed[-1] == newest(cloud, server.id).memory_total
    assert statuses(cloud, server.id, 1) == ["completed"]


def test_live_migration_moves_the_room_to_the_target(cloud):
    server = cloud.add_server("host1", flavor="m1.medium")

    cloud.live_migrate(server.id, "host2", "auto")

    assert room(cloud, "host2") == less("m1.medium")
    assert room(cloud, "host1") == less("m1.medium")
    statuses(cloud, server.id, 5)
    assert room(cloud, "host1") == full()
    assert room(cloud, "host2") == less("m1.medium")


def test_the_scheduler_picks_the_enabled_host_with_most_room(cloud):
    server = cloud.add_server("host1")
    cloud.add_server("host2")
    cloud.update_service(cloud.services["host3"].id, disabled=True)
    crowded = cloud.add_server("host2")

    cloud.live_migrate(server.id, None, "auto")

    assert newest(cloud, server.id).dest_compute == "host2"
    cloud.update_service(cloud.services["host3"].id, disabled=False)
    cloud.live_migrate(crowded.id, None, "auto")
    assert newest(cloud, crowded.id).dest_compute == "host3"


def test_one_live_migration_per_source_host_the_rest_queue(cloud):
    servers = [cloud.add_server("host1") for _ in range(3)]
    other = cloud.add_server("host2")
    for server in servers:
        cloud.live_migrate(server.id, "host3", "auto")
    cloud.live_migrate(other.id, "host3", "auto")

    cloud.advance()

    assert [newest(cloud, s.id).status for s in servers] == [
        "preparing", "queued", "queued"]
    assert newest(cloud, other.id).status == "preparing"
    cloud.advance(4)
    assert [newest(cloud, s.id).status for s in servers] == [
        "completed", "preparing", "queued"]


def test_more_live_migrations_per_host_when_nova_allows_them():
    cloud = fake.FakeCompute(2, max_concurrent_live_migrations=2)
    servers = [cloud.add_server("host1") for _ in range(3)]
    for server in servers:
        cloud.live_migrate(server.id, "host2", "auto")

    cloud.advance()

    assert [newest(cloud, s.id).status for s in servers] == [
        "preparing", "preparing", "queued"]


def test_server_migrations_lists_in_progress_live_ones_without_time(cloud):
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")

    first = cloud.server_migrations(server.id)
    again = cloud.server_migrations(server.id)
    statuses(cloud, server.id, 5)

    assert [m.status for m in first] == ["accepted"]
    assert again == first
    assert cloud.server_migrations(server.id) == []


@pytest.mark.parametrize("status", ["SHUTOFF", "ERROR"],
                         ids=["shutoff", "error"])
def test_live_migration_needs_an_active_or_paused_server(cloud, status):
    server = cloud.add_server("host1", status=status)

    with pytest.raises(exceptions.Conflict, match="vm_state"):
        cloud.live_migrate(server.id, "host2", "auto")


def test_a_busy_server_cannot_be_moved_again(cloud):
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")

    with pytest.raises(exceptions.Conflict, match="task_state migrating"):
        cloud.live_migrate(server.id, "host3", "auto")
    with pytest.raises(exceptions.Conflict):
        cloud.cold_migrate(server.id, "host3")


def test_accepted_at_is_nova_s_http_date_before_the_record(cloud):
    server = cloud.add_server("host1")

    result = cloud.live_migrate(server.id, "host2", "auto")

    accepted = email.utils.parsedate_to_datetime(result.accepted_at)
    created = models.parse_time(newest(cloud, server.id).created_at)
    assert accepted.tzinfo is not None
    assert accepted <= created


def test_a_failing_live_migration_leaves_the_server_where_it_was(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="fail")

    result = cloud.live_migrate(server.id, "host2", "auto")

    assert statuses(cloud, server.id, 5)[-1] == "failed"
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host1", "ACTIVE", None)
    assert room(cloud, "host2") == full()
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None
    assert [e.details for e in action.failed_events] == [
        "live-migration failed in the fake driver"]


def test_a_failing_live_migration_of_a_paused_server_stays_paused(cloud):
    server = cloud.add_server("host1", status="PAUSED")
    cloud.behaviours[server.id] = fake.Behaviour(live="fail")

    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, 5)

    assert cloud.get_server(server.id).status == "PAUSED"


def test_no_valid_host_for_a_live_migration_is_an_error_record(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="no_valid_host")

    result = cloud.live_migrate(server.id, None, "auto")

    record = cloud.list_migrations(server_id=server.id)[0]
    assert (record.status, record.source_compute) == ("error", "host1")
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None
    assert "No valid host" in action.failed_events[0].details
    assert cloud.get_server(server.id).host == "host1"
    assert room(cloud, "host2") == room(cloud, "host3") == full()


@pytest.mark.parametrize("force", [False, True], ids=["scheduled", "forced"])
def test_a_target_without_room_is_an_error_record(force):
    cloud = fake.FakeCompute(["a", "b"], ram_mb=4096)
    server = cloud.add_server("a", flavor="m1.medium")
    cloud.add_server("b", flavor="m1.small")

    cloud.live_migrate(server.id, "b", "auto", force=force)

    record = newest(cloud, server.id)
    assert (record.status, record.dest_compute) == ("error", None)
    assert cloud.get_server(server.id).task_state is None


@pytest.mark.parametrize(
    ("move", "target", "message"),
    [(lambda c, s, h: c.live_migrate(s.id, h, "auto"), "nowhere",
      "not found"),
     (lambda c, s, h: c.cold_migrate(s.id, h), "nowhere", "not found"),
     (lambda c, s, h: c.cold_migrate(s.id, h), "host1", "same")],
    ids=["live-unknown-host", "cold-unknown-host", "cold-same-host"],
)
def test_nova_s_api_refuses_a_bad_target_at_once(cloud, move, target,
                                                  message):
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.BadRequest, match=message) as raised:
        move(cloud, server, target)

    assert raised.value.status_code == 400
    assert cloud.list_migrations(server_id=server.id) == []
    assert cloud.get_server(server.id).task_state is None


def test_a_live_migration_to_its_own_host_is_accepted_then_an_error(cloud):
    """Since 2.34 Nova's conductor, not its API, finds the target is the
    source: HTTP 202, and the record ends in error."""
    server = cloud.add_server("host1")

    result = cloud.live_migrate(server.id, "host1", "auto")

    record = newest(cloud, server.id)
    assert (record.status, record.migration_type, record.dest_compute) == (
        "error", "live-migration", None)
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None
    assert "to current host (host1)" in action.failed_events[0].details
    assert seen(cloud.get_server(server.id)) == ("ACTIVE", None)


LIVE_MOVE = (lambda c, s, h: c.live_migrate(s.id, h, "auto"),
             "live-migration")
COLD_MOVE = (lambda c, s, h: c.cold_migrate(s.id, h), "migration")
RESIZE = (lambda c, s, h: c.resize(s.id, "m1.medium"), "resize")


@pytest.mark.parametrize(
    ("move", "down", "disabled", "target"),
    [(LIVE_MOVE, ["host2"], [], "host2"),
     (LIVE_MOVE, [], ["host2"], "host2"),
     (LIVE_MOVE, ["host2"], ["host3"], None),
     (COLD_MOVE, ["host2"], [], "host2"),
     (COLD_MOVE, [], ["host2"], "host2"),
     (COLD_MOVE, ["host2"], ["host3"], None),
     (RESIZE, ["host2"], ["host3"], None)],
    ids=["live-target-down", "live-target-disabled", "live-no-host-left",
         "cold-target-down", "cold-target-disabled", "cold-no-host-left",
         "resize-no-host-left"],
)
def test_the_scheduler_refuses_after_nova_accepted_the_move(
    cloud, move, down, disabled, target
):
    start, kind = move
    server = cloud.add_server("host1")
    for host in down:
        cloud.update_service(cloud.services[host].id, forced_down=True)
    for host in disabled:
        cloud.update_service(cloud.services[host].id, disabled=True)

    result = start(cloud, server, target)

    record = newest(cloud, server.id)
    assert (record.status, record.migration_type) == ("error", kind)
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None
    assert "No valid host" in action.failed_events[0].details
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host1", "ACTIVE", None)
    assert room(cloud, "host2") == room(cloud, "host3") == full()


def test_a_forced_live_migration_skips_the_scheduler_s_filters(cloud):
    server = cloud.add_server("host1")
    cloud.update_service(cloud.services["host2"].id, disabled=True)

    cloud.live_migrate(server.id, "host2", "auto", force=True)

    assert statuses(cloud, server.id, 5)[-1] == "completed"
    assert cloud.get_server(server.id).host == "host2"


# -- hang, abort, force-complete -------------------------------------------

def test_a_hanging_live_migration_runs_for_ever_without_progress(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(server.id, "host2", "auto")

    seen = statuses(cloud, server.id, 20)

    assert seen[1:] == ["running"] * 19
    assert newest(cloud, server.id).memory_processed == 1
    assert cloud.get_server(server.id).host == "host1"


@pytest.mark.parametrize(("reads", "status"), [(1, "preparing"),
                                               (3, "running")],
                         ids=["preparing", "running"])
def test_abort_cancels_and_gives_the_room_back(cloud, reads, status):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, reads)

    cloud.abort_migration(server.id, newest(cloud, server.id).id)

    # Nova records the abort as it takes it; the compute cancels later.
    assert newest(cloud, server.id).status == status
    assert cloud.instance_actions(server.id)[0].action == (
        "live_migration_cancel")
    assert statuses(cloud, server.id, 2) == ["cancelled", "cancelled"]
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host1", "ACTIVE", None)
    assert room(cloud, "host2") == full()
    assert ("abort_migration", server.id) in cloud.writes


def test_abort_of_a_queued_migration_lets_it_never_start(cloud):
    first, second = cloud.add_server("host1"), cloud.add_server("host1")
    cloud.behaviours[first.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(first.id, "host2", "auto")
    cloud.live_migrate(second.id, "host2", "auto")
    cloud.advance()
    assert newest(cloud, second.id).status == "queued"

    cloud.abort_migration(second.id, newest(cloud, second.id).id)
    cloud.advance(3)

    assert [a.action for a in cloud.instance_actions(second.id)] == [
        "live_migration_cancel", "live-migration"]
    assert newest(cloud, second.id).status == "cancelled"
    assert newest(cloud, first.id).status == "running"


def test_abort_of_an_accepted_migration_is_refused(cloud):
    """Microversion 2.65 aborts only queued, preparing and running ones."""
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")

    with pytest.raises(exceptions.BadRequest, match="is accepted") as raised:
        cloud.abort_migration(server.id, newest(cloud, server.id).id)

    assert raised.value.status_code == 400
    assert [a.action for a in cloud.instance_actions(server.id)] == [
        "live-migration"]
    assert statuses(cloud, server.id, 1) == ["preparing"]


def test_abort_of_a_finished_migration_is_refused(cloud):
    """The server no longer migrates: Nova's state check answers 409."""
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, 5)

    with pytest.raises(exceptions.Conflict, match="task_state None"):
        cloud.abort_migration(server.id, newest(cloud, server.id).id)


def test_abort_of_an_unknown_migration(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(server.id, "host2", "auto")

    with pytest.raises(exceptions.NotFound) as raised:
        cloud.abort_migration(server.id, 99)

    assert raised.value.status_code == 404


@pytest.mark.parametrize(("action", "code"), [
    ("abort_migration", 404), ("force_complete_migration", 400)],
    ids=["abort", "force-complete"])
def test_another_server_s_migration_is_refused(cloud, action, code):
    mine, other = cloud.add_server("host1"), cloud.add_server("host2")
    cloud.behaviours[mine.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(mine.id, "host3", "auto")
    cloud.live_migrate(other.id, "host3", "auto")
    statuses(cloud, mine.id, 3)

    with pytest.raises(exceptions.ComputeError) as raised:
        getattr(cloud, action)(mine.id, newest(cloud, other.id).id)

    assert raised.value.status_code == code


def test_force_complete_finishes_a_hanging_migration(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, 4)

    cloud.force_complete_migration(server.id, newest(cloud, server.id).id)

    assert newest(cloud, server.id).status == "running"
    assert cloud.instance_actions(server.id)[0].action == (
        "live_migration_force_complete")
    assert statuses(cloud, server.id, 1) == ["completed"]
    assert cloud.get_server(server.id).host == "host2"
    assert room(cloud, "host1") == full()


def test_force_complete_never_makes_a_failing_migration_succeed(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="fail", steps=5)
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, 2)

    cloud.force_complete_migration(server.id, newest(cloud, server.id).id)

    assert statuses(cloud, server.id, 1) == ["failed"]
    assert cloud.get_server(server.id).host == "host1"


@pytest.mark.parametrize("reads", [0, 1], ids=["accepted", "preparing"])
def test_force_complete_needs_a_running_migration(cloud, reads):
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, reads)

    with pytest.raises(exceptions.BadRequest,
                       match="Cannot force complete") as raised:
        cloud.force_complete_migration(server.id,
                                       newest(cloud, server.id).id)

    assert raised.value.status_code == 400


def test_force_complete_of_a_paused_server_is_a_conflict(cloud):
    server = cloud.add_server("host1", status="PAUSED")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(server.id, "host2", "auto")
    statuses(cloud, server.id, 3)

    with pytest.raises(exceptions.Conflict, match="vm_state paused"):
        cloud.force_complete_migration(server.id,
                                       newest(cloud, server.id).id)


# -- steps=0 ---------------------------------------------------------------

def test_steps_zero_finishes_every_move_at_once():
    cloud = fake.FakeCompute(2, steps=0)
    server = cloud.add_server("host1")

    cloud.live_migrate(server.id, "host2", "auto")

    assert newest(cloud, server.id).status == "completed"
    assert cloud.get_server(server.id).host == "host2"
    assert cloud.calls["list_migrations"] == 0


def test_steps_zero_for_one_server_finishes_it_at_once(cloud):
    slow = cloud.add_server("host1")
    quick = cloud.add_server("host2")
    cloud.live_migrate(slow.id, "host3", "auto")
    cloud.behaviours[quick.id] = fake.Behaviour(steps=0)

    cloud.live_migrate(quick.id, "host3", "auto")

    assert newest(cloud, quick.id).status == "completed"
    # The other migration does not move on: nobody read the cloud.
    assert newest(cloud, slow.id).status == "accepted"
    assert cloud.servers[quick.id].host == "host3"


def test_steps_zero_behind_a_running_migration_still_queues(cloud):
    first, second = cloud.add_server("host1"), cloud.add_server("host1")
    cloud.live_migrate(first.id, "host2", "auto")
    cloud.advance()
    cloud.behaviours[second.id] = fake.Behaviour(steps=0)

    cloud.live_migrate(second.id, "host2", "auto")

    assert newest(cloud, second.id).status == "queued"
    assert newest(cloud, first.id).status == "preparing"


def test_steps_zero_cold_migration_waits_for_confirmation():
    cloud = fake.FakeCompute(2, steps=0)
    server = cloud.add_server("host1")

    cloud.cold_migrate(server.id, None)

    assert newest(cloud, server.id).status == "finished"
    assert cloud.get_server(server.id).status == "VERIFY_RESIZE"


# -- cold migration and resize ---------------------------------------------

def test_cold_migration_waits_in_verify_resize_then_confirms(cloud):
    server = cloud.add_server("host1", flavor="m1.medium")

    cloud.cold_migrate(server.id, "host2")

    assert seen(cloud.servers[server.id]) == ("RESIZE", "resize_prep")
    assert newest(cloud, server.id).status == "pre-migrating"
    steps = []
    for _ in range(4):
        status = cloud.list_migrations(server_id=server.id)[0].status
        steps.append((status, seen(cloud.servers[server.id])))
    assert steps == [
        ("migrating", ("RESIZE", "resize_migrating")),
        ("post-migrating", ("RESIZE", "resize_migrated")),
        ("post-migrating", ("RESIZE", "resize_finish")),
        ("finished", ("VERIFY_RESIZE", None)),
    ]
    resized = cloud.servers[server.id]
    assert (resized.host, resized.status, resized.vm_state) == (
        "host2", "VERIFY_RESIZE", "resized")
    # Until confirmed, both hosts hold the server's room.
    assert room(cloud, "host1") == room(cloud, "host2") == less("m1.medium")

    cloud.confirm_resize(server.id)

    assert newest(cloud, server.id).status == "confirming"
    assert seen(cloud.servers[server.id]) == ("VERIFY_RESIZE", None)
    assert statuses(cloud, server.id, 1) == ["confirmed"]
    confirmed = cloud.get_server(server.id)
    assert (confirmed.host, confirmed.status) == ("host2", "ACTIVE")
    assert room(cloud, "host1") == full()
    assert room(cloud, "host2") == less("m1.medium")


def test_a_stopped_server_stays_stopped_after_its_cold_migration(cloud):
    server = cloud.add_server("host1", status="SHUTOFF")

    cloud.cold_migrate(server.id, None)
    assert seen(cloud.servers[server.id]) == ("RESIZE", "resize_prep")
    statuses(cloud, server.id, 4)
    cloud.confirm_resize(server.id)

    after = cloud.get_server(server.id)
    assert (after.status, after.vm_state) == ("SHUTOFF", "stopped")


def test_a_stopped_server_reverted_is_stopped_again_on_its_source(cloud):
    server = cloud.add_server("host1", status="SHUTOFF")
    cloud.cold_migrate(server.id, "host2")
    statuses(cloud, server.id, 4)

    cloud.revert_resize(server.id)
    cloud.advance()
    reverted = cloud.servers[server.id]
    cloud.advance()
    stopped = cloud.servers[server.id]

    assert (reverted.host, seen(reverted)) == (
        "host1", ("VERIFY_RESIZE", "powering-off"))
    assert (stopped.host, seen(stopped), stopped.vm_state) == (
        "host1", ("SHUTOFF", None), "stopped")


def test_a_failing_revert_says_reverted_then_errors_out(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(revert="fail")
    cloud.cold_migrate(server.id, "host2")
    statuses(cloud, server.id, 4)

    cloud.revert_resize(server.id)

    assert statuses(cloud, server.id, 2) == ["reverted", "error"]
    assert seen(cloud.servers[server.id]) == ("ERROR", "resize_reverting")
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host1", "ERROR", None)
    assert room(cloud, "host2") == full()


def test_revert_puts_the_server_back(cloud):
    server = cloud.add_server("host1")
    cloud.cold_migrate(server.id, "host2")
    statuses(cloud, server.id, 4)

    cloud.revert_resize(server.id)

    assert newest(cloud, server.id).status == "reverting"
    assert seen(cloud.servers[server.id]) == ("REVERT_RESIZE",
                                              "resize_reverting")
    assert statuses(cloud, server.id, 1) == ["reverted"]
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host1", "ACTIVE", None)
    assert room(cloud, "host2") == full()
    assert room(cloud, "host1") == less("m1.small")


def test_resize_confirmed_gives_the_old_flavor_s_room_back(cloud):
    server = cloud.add_server("host1", flavor="m1.small")

    cloud.resize(server.id, "m1.large")
    statuses(cloud, server.id, 3)

    resized = cloud.get_server(server.id)
    assert resized.flavor_info == fake.FLAVORS["m1.large"]
    assert room(cloud, resized.host) == less("m1.large")
    cloud.confirm_resize(server.id)
    cloud.advance()
    assert room(cloud, "host1") == full()
    assert room(cloud, resized.host) == less("m1.large")


def test_resize_reverted_keeps_the_old_flavor(cloud):
    server = cloud.add_server("host1", flavor="m1.small")
    cloud.resize(server.id, "4")
    statuses(cloud, server.id, 3)
    target = cloud.get_server(server.id).host

    cloud.revert_resize(server.id)

    after = cloud.get_server(server.id)
    assert (after.host, after.flavor_info) == ("host1",
                                               fake.FLAVORS["m1.small"])
    assert room(cloud, target) == full()
    assert room(cloud, "host1") == less("m1.small")


@pytest.mark.parametrize("action", ["confirm_resize", "revert_resize"])
def test_confirm_or_revert_needs_verify_resize(cloud, action):
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.Conflict, match="vm_state active"):
        getattr(cloud, action)(server.id)


@pytest.mark.parametrize("status", ["ACTIVE", "SHUTOFF"])
def test_a_failing_cold_migration_is_rolled_back(cloud, status):
    """Nova's InstanceFaultRollback: the server as it was, on its source;
    the record in error."""
    server = cloud.add_server("host1", status=status)
    cloud.behaviours[server.id] = fake.Behaviour(cold="fail")

    result = cloud.cold_migrate(server.id, "host2")

    assert statuses(cloud, server.id, 3)[-1] == "error"
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host1", status, None)
    assert room(cloud, "host2") == full()
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None and action.failed_events


def test_no_valid_host_for_a_cold_migration_is_an_error_record(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(cold="no_valid_host")

    result = cloud.cold_migrate(server.id, None)

    assert [m.status for m in cloud.list_migrations(
        server_id=server.id)] == ["error"]
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None and action.failed_events
    assert cloud.get_server(server.id).task_state is None
    assert room(cloud, "host2") == room(cloud, "host3") == full()


def test_resize_to_an_unknown_flavor(cloud):
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.NotFound, match="no such flavor"):
        cloud.resize(server.id, "m9.huge")


# -- evacuation ------------------------------------------------------------

def test_evacuate_needs_the_source_service_down(cloud):
    server = cloud.add_server("host1")

    with pytest.raises(exceptions.BadRequest, match="still in use"):
        cloud.evacuate(server.id, None)

    assert cloud.list_migrations(server_id=server.id) == []


def test_no_valid_host_for_an_evacuation_is_an_error_record(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(cold="no_valid_host")
    cloud.update_service(cloud.services["host1"].id, forced_down=True)

    cloud.evacuate(server.id, None)

    record = newest(cloud, server.id)
    assert (record.status, record.migration_type) == ("error", "evacuation")
    assert cloud.get_server(server.id).host == "host1"


def test_evacuate_rebuilds_the_server_stopped_elsewhere(cloud):
    server = cloud.add_server("host1")
    service = cloud.update_service(cloud.services["host1"].id,
                                   forced_down=True)
    assert not service.up

    cloud.evacuate(server.id, "host3")

    assert seen(cloud.servers[server.id]) == ("REBUILD", "rebuilding")
    assert newest(cloud, server.id).status == "accepted"
    steps = []
    for _ in range(6):
        status = cloud.list_migrations(server_id=server.id)[0].status
        steps.append((status, seen(cloud.servers[server.id])))
    # From 2.95 Nova stops the server it rebuilt.
    assert steps == [
        ("pre-migrating", ("REBUILD", "rebuilding")),
        ("pre-migrating", ("REBUILD", "rebuilding")),
        ("pre-migrating", ("REBUILD", "rebuild_block_device_mapping")),
        ("pre-migrating", ("REBUILD", "rebuild_spawning")),
        ("pre-migrating", ("ACTIVE", "powering-off")),
        ("done", ("SHUTOFF", None))]
    record = newest(cloud, server.id)
    assert (record.migration_type, record.dest_compute) == ("evacuation",
                                                            "host3")
    after = cloud.get_server(server.id)
    assert (after.host, after.status, after.task_state) == (
        "host3", "SHUTOFF", None)
    cloud.start_server(server.id)
    assert cloud.get_server(server.id).status == "ACTIVE"


@pytest.mark.parametrize(
    ("status", "target", "error", "code"),
    [("ACTIVE", "nowhere", exceptions.NotFound, 404),
     ("ACTIVE", "host1", exceptions.BadRequest, 400),
     ("PAUSED", None, exceptions.Conflict, 409),
     ("SHELVED", None, exceptions.Conflict, 409)],
    ids=["unknown-host", "same-host", "paused", "shelved"],
)
def test_nova_s_api_checks_an_evacuation(cloud, status, target, error, code):
    server = cloud.add_server("host1", status=status)
    cloud.update_service(cloud.services["host1"].id, forced_down=True)

    with pytest.raises(error) as raised:
        cloud.evacuate(server.id, target)

    assert type(raised.value) is error
    assert raised.value.status_code == code
    assert cloud.list_migrations(server_id=server.id) == []


def test_a_failing_evacuation_ends_failed(cloud):
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(cold="fail")
    cloud.update_service(cloud.services["host1"].id, forced_down=True)

    result = cloud.evacuate(server.id, "host2")

    assert statuses(cloud, server.id, 3)[-1] == "failed"
    assert cloud.get_server(server.id).host == "host1"
    assert room(cloud, "host2") == full()
    action = cloud.instance_action(server.id, result.request_id)
    assert action is not None and action.failed_events


# -- services and migrations -----------------------------------------------

def test_update_service(cloud):
    service_id = cloud.services["host1"].id

    disabled = cloud.update_service(service_id, disabled=True,
                                    disabled_reason="drain")
    enabled = cloud.update_service(service_id, disabled=False)
    down = cloud.update_service(service_id, forced_down=True)
    up = cloud.update_service(service_id, forced_down=False)

    assert (disabled.status, disabled.disabled_reason) == ("disabled",
                                                           "drain")
    assert (enabled.status, enabled.disabled_reason) == ("enabled", None)
    assert (down.state, down.forced_down) == ("down", True)
    assert (up.state, up.forced_down) == ("up", False)
    assert cloud.writes == [("update_service", service_id)] * 4


def test_update_an_unknown_service(cloud):
    with pytest.raises(exceptions.NotFound):
        cloud.update_service("nope", disabled=True)


def test_list_migrations_filters_newest_first():
    cloud = fake.FakeCompute(HOSTS, steps=10)
    one = cloud.add_server("host1")
    two = cloud.add_server("host2")
    cloud.live_migrate(one.id, "host3", "auto")
    cloud.cold_migrate(two.id, "host1")
    first, second = cloud.migrations[0].record, cloud.migrations[1].record

    everything = cloud.list_migrations()

    assert [m.id for m in everything] == [second.id, first.id]
    assert [m.id for m in cloud.list_migrations(
        source_compute="host1")] == [first.id]
    assert [m.id for m in cloud.list_migrations(host="host1")] == [
        second.id, first.id]
    assert [m.id for m in cloud.list_migrations(
        migration_type="migration")] == [second.id]
    assert [m.id for m in cloud.list_migrations(
        status="migrating")] == [second.id]


@pytest.mark.parametrize(
    "move",
    [lambda c, s: c.live_migrate(s.id, "host2", "auto"),
     lambda c, s: c.cold_migrate(s.id, "host2")],
    ids=["live", "cold"],
)
def test_a_new_record_is_not_updated_until_its_first_save(cloud, move):
    """Nova leaves ``updated_at`` NULL at creation (a ``changes-since``
    poll misses such a record) and sets it at the first save."""
    server = cloud.add_server("host1")

    move(cloud, server)

    created = newest(cloud, server.id)
    assert created.created_at is not None
    assert created.updated_at is None
    statuses(cloud, server.id, 1)
    saved = newest(cloud, server.id).updated_at
    assert saved is not None and saved > created.created_at


def test_list_migrations_changes_since(cloud):
    done = cloud.add_server("host1")
    cloud.live_migrate(done.id, "host2", "auto")
    statuses(cloud, done.id, 5)
    mark = newest(cloud, done.id).updated_at
    assert mark is not None
    later = cloud.add_server("host2")
    cloud.live_migrate(later.id, "host3", "auto")

    changed = cloud.list_migrations(changes_since=mark)
    after_both = cloud.list_migrations(
        changes_since=newest(cloud, later.id).updated_at)

    assert {m.server_id for m in changed} == {done.id, later.id}
    assert [m.server_id for m in after_both] == [later.id]


def test_calls_count_reads_and_writes(cloud):
    server = cloud.add_server("host1")

    cloud.get_server(server.id)
    cloud.list_migrations()
    cloud.live_migrate(server.id, "host2", "auto")

    assert cloud.calls == {"get_server": 1, "list_migrations": 1,
                           "live_migrate": 1}
    assert cloud.writes == [("live_migrate", server.id)]


def test_instance_actions_newest_first(cloud):
    server = cloud.add_server("host1")

    first = cloud.stop_server(server.id)
    cloud.advance()
    second = cloud.start_server(server.id)

    assert [a.request_id for a in cloud.instance_actions(server.id)] == [
        second.request_id, first.request_id]
    assert cloud.instance_action(server.id, "req-unknown") is None


@pytest.mark.parametrize("ref", ["3", "m1.medium"], ids=["id", "name"])
def test_get_flavor(cloud, ref):
    assert cloud.get_flavor(ref) == fake.FLAVORS["m1.medium"]
