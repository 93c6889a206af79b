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
"""The servers real hosts carry, against the in-memory cloud: servers Nova
does not live-migrate (PCI, vGPU), busy, locked, in ERROR, shelved, deleted
while the run goes on, and the members of server groups."""

import dataclasses
import threading

import pytest

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.moves import base as moves_base
from nova_migrate_flows.moves import planning, registry
from nova_migrate_flows.tasks import base, moves, preflight, verify


def check(conf, cloud, plugin, servers, operation="host-evacuate-live",
          **given):
    """The verdicts of one preflight check over ``servers``."""
    servers = servers if isinstance(servers, list) else [servers]
    request = request_mod.build_request(
        conf.conf, request_mod.Operation(operation),
        **({"hosts": sorted({s.host for s in servers if s.host})}
           if operation.startswith("host-")
           else {"servers": [servers[0].id]}),
        **given)
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)
    verdicts = plugin("test").execute(
        runtime, {s.id: s.to_dict() for s in servers}, request.to_dict())
    return {sid: base.CheckResult(**v) for sid, v in verdicts.items()}


def one(verdicts):
    (verdict,) = verdicts.values()
    return verdict


def outcome_of(result, server_id):
    return next(o for o in result.outcomes if o["server"] == server_id)


def entry_of(result, server_id):
    return result.plan[server_id]


@pytest.fixture
def run_with(conf, cloud):
    """Run an operation with listeners of the run's events."""

    def run(operation, listeners=(), **given):
        request = request_mod.build_request(
            conf.conf, request_mod.Operation(operation), **given)
        return runner_mod.Runner(conf.conf, cloud,
                                 subscribers=list(listeners)).run(request)

    return run


# -- servers Nova does not live-migrate --------------------------------------

@pytest.mark.parametrize(("specs", "words"), [
    ({"pci_passthrough:alias": "nic:2"},
     "PCI passthrough devices (pci_passthrough:alias=nic:2)"),
    ({"resources:VGPU": "1"}, "vGPUs (resources:VGPU=1)"),
    ({"resources1:VGPU": "1"}, "vGPUs (resources1:VGPU=1)"),
    ({"accel:device_profile": "fpga"}, "accelerators (Cyborg)"),
    ({"hw:mem_encryption": "true"}, "encrypted memory (AMD SEV)"),
    ({"hw:tpm_version": "2.0"}, "a vTPM"),
])
def test_flavor_extra_specs_nova_does_not_live_migrate(specs, words):
    server = models.Server("s", "s", "ACTIVE", "host1", models.Flavor(
        "gpu", 512, 1, 1, extra_specs=specs).to_dict())

    assert words in (planning.non_live_reason(server) or "")


@pytest.mark.parametrize("specs", [
    {},
    {"hw:cpu_policy": "dedicated"},
    {"hw:mem_encryption": "false"},
    {"resources:VGPU": "0"},
    {"hw:tpm_version": "2.0", "hw:tpm_secret_security": "host"},
])
def test_flavor_extra_specs_that_move_live(specs):
    server = models.Server("s", "s", "ACTIVE", "host1", models.Flavor(
        "plain", 512, 1, 1, extra_specs=specs).to_dict())

    assert planning.non_live_reason(server) is None


@pytest.mark.parametrize("flavor", ["m1.pci", "m1.vgpu"])
def test_a_live_migration_of_a_pci_or_vgpu_server_is_refused(
        conf, cloud, run, flavor):
    server = cloud.add_server("host1", flavor=flavor)

    with pytest.raises(exceptions.PreflightFailed) as caught:
        run("live-migrate", servers=[server.id])

    assert "Nova does not live-migrate it" in str(caught.value)
    assert "move --kind cold-migrate" in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert cloud.writes == []


def test_a_live_drain_skips_pci_and_vgpu_servers_by_default(cloud, run):
    pci = cloud.add_server("host1", flavor="m1.pci")
    vgpu = cloud.add_server("host1", flavor="m1.vgpu")
    plain = cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"])

    assert outcome_of(result, plain.id)["status"] == "migrated"
    for server in (pci, vgpu):
        outcome = outcome_of(result, server.id)
        assert outcome["status"] == "skipped"
        assert "Nova does not live-migrate it ([drain] non_live_servers " \
            "= skip)" in outcome["reason"]
        assert cloud.servers[server.id].host == "host1"
    assert cloud.calls["live_migrate"] == 1
    assert cloud.calls["cold_migrate"] == 0
    assert result.hosts[0]["empty"] is False


def test_a_live_drain_cold_migrates_them_when_configured(conf, cloud, run):
    conf.config(group="drain", non_live_servers="cold-migrate")
    pci = cloud.add_server("host1", flavor="m1.pci")
    plain = cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"])

    assert result.exit_code == ExitCode.OK
    assert entry_of(result, pci.id)["action"] == constants.COLD
    assert entry_of(result, plain.id)["action"] == constants.LIVE
    server_state = entry_of(result, pci.id)["checks"]["server-state"]
    assert server_state["status"] == base.WARN
    assert "cold-migrate instead ([drain] non_live_servers)" in \
        server_state["message"]
    assert {o["status"] for o in result.outcomes} == {"migrated"}
    kinds = {m.record.server_id: m.kind for m in cloud.migrations}
    assert kinds == {pci.id: "migration", plain.id: "live-migration"}
    assert cloud.servers[pci.id].host != "host1"
    assert result.hosts[0]["empty"] is True


def test_a_cold_drain_moves_them_as_any_other(cloud, run):
    pci = cloud.add_server("host1", flavor="m1.pci")

    result = run("host-servers-migrate", hosts=["host1"])

    assert outcome_of(result, pci.id)["status"] == "migrated"


@pytest.mark.parametrize("value", ["explode", "live-migrate", "resize",
                                   "evacuate"])
def test_non_live_servers_must_name_a_kind_that_can_do_it(conf, cloud, run,
                                                           value):
    conf.config(group="drain", non_live_servers=value)
    cloud.add_server("host1", flavor="m1.pci")

    with pytest.raises(exceptions.ConfigurationError) as caught:
        run("host-evacuate-live", hosts=["host1"], dry_run=True)

    assert str(caught.value) == (
        f"configuration: [drain] non_live_servers = {value!r}: not skip, "
        "nor a kind of move that takes a running server off a running "
        "host; use one of: skip, cold-migrate")
    assert "\n" not in str(caught.value)
    assert sum(cloud.calls.values()) == 0


# -- busy, locked, ERROR, shelved ----------------------------------------

def clearing_after(cloud, server_id, reads, **change):
    """Make the server's task end (``change`` applied) at its ``reads``-th
    read."""
    original = cloud.get_server
    count = {"reads": 0}

    def get_server(wanted):
        if wanted == server_id:
            count["reads"] += 1
            if count["reads"] == reads:
                cloud.servers[server_id] = dataclasses.replace(
                    cloud.servers[server_id], task_state=None, **change)
        return original(wanted)

    cloud.get_server = get_server
    return count


def test_a_busy_server_is_waited_for_and_moved(conf, cloud, run):
    conf.config(group="migration", busy_wait=30)
    server = cloud.add_server("host1", task_state="image_uploading")
    reads = clearing_after(cloud, server.id, 2)

    result = run("host-evacuate-live", hosts=["host1"])

    assert reads["reads"] >= 2
    assert outcome_of(result, server.id)["status"] == "migrated"
    assert entry_of(result, server.id)["server"]["task_state"] is None


def test_a_server_still_busy_after_the_wait_is_skipped(conf, cloud, run):
    busy = cloud.add_server("host1", task_state="image_uploading")
    other = cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"])

    outcome = outcome_of(result, busy.id)
    assert outcome["status"] == "skipped"
    assert outcome["reason"] == (
        "server-state: busy: task_state image_uploading; wait for it to "
        "end (still busy after 0.1 s, [migration] busy_wait)")
    assert cloud.calls["get_server"] >= 1
    assert outcome_of(result, other.id)["status"] == "migrated"


def test_no_wait_without_busy_wait(conf, cloud):
    conf.config(group="migration", busy_wait=0)
    server = cloud.add_server("host1", task_state="image_uploading")

    verdict = one(check(conf, cloud, preflight.ServerStateCheck, server))

    assert verdict.status == base.SKIP
    assert verdict.message == ("busy: task_state image_uploading; wait for "
                               "it to end")
    assert cloud.calls["get_server"] == 0


def test_a_busy_server_whose_task_stopped_it_moves_as_it_is_now(
        conf, cloud, run):
    conf.config(group="migration", busy_wait=30)
    server = cloud.add_server("host1", task_state="powering-off")
    clearing_after(cloud, server.id, 1, status="SHUTOFF", vm_state="stopped",
                   power_state=models.POWER_STATE_SHUTDOWN)

    result = run("host-evacuate-live", hosts=["host1"])

    assert entry_of(result, server.id)["action"] == constants.COLD
    assert outcome_of(result, server.id)["status"] == "migrated"
    assert cloud.servers[server.id].status == "SHUTOFF"


def test_a_busy_server_that_left_the_host_is_skipped(conf, cloud):
    conf.config(group="migration", busy_wait=30)
    server = cloud.add_server("host1", task_state="resize_migrating")
    clearing_after(cloud, server.id, 1, host="host3", status="VERIFY_RESIZE")

    verdict = one(check(conf, cloud, preflight.ServerStateCheck, server))

    assert verdict.status == base.SKIP
    assert verdict.message == ("it left host1 while it was busy (now on "
                               "host3, VERIFY_RESIZE): nothing to move")


def test_a_busy_server_deleted_during_the_wait_is_skipped(conf, cloud):
    conf.config(group="migration", busy_wait=30)
    server = cloud.add_server("host1", task_state="deleting")
    original = cloud.get_server

    def deleted(server_id):
        cloud.delete_server(server_id)
        cloud.get_server = original
        return original(server_id)

    cloud.get_server = deleted

    verdict = one(check(conf, cloud, preflight.ServerStateCheck, server,
                        "live-migrate"))

    assert verdict.status == base.SKIP
    assert verdict.message.startswith("gone: it was deleted while the "
                                      "preflight waited")


@pytest.mark.parametrize(("operation", "expected"), [
    ("live-migrate", base.FAIL), ("host-evacuate-live", base.SKIP),
    ("host-servers-migrate", base.SKIP)])
def test_locked_servers_stay_when_move_locked_is_false(conf, cloud,
                                                       operation, expected):
    conf.config(group="migration", move_locked=False)
    server = cloud.add_server("host1", locked=True, locked_reason="audit")

    verdict = one(check(conf, cloud, preflight.ServerStateCheck, server,
                        operation))

    assert verdict.status == expected
    assert verdict.message == (
        "locked (audit): not moved ([migration] move_locked = False); "
        "unlock it ('openstack server unlock') to move it, or tell its "
        "owner")


def test_a_locked_server_is_moved_by_default_with_a_warning(cloud, run):
    server = cloud.add_server("host1", locked=True)

    result = run("host-evacuate-live", hosts=["host1"])

    outcome = outcome_of(result, server.id)
    assert outcome["status"] == "migrated"
    assert "locked: moved anyway with admin rights" in outcome["reason"]


def test_a_locked_drain_leaves_it_and_moves_the_others(conf, cloud, run):
    conf.config(group="migration", move_locked=False)
    locked = cloud.add_server("host1", locked=True)
    other = cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"])

    assert outcome_of(result, locked.id)["status"] == "skipped"
    assert outcome_of(result, other.id)["status"] == "migrated"
    assert cloud.servers[locked.id].host == "host1"


def test_a_server_in_error_is_skipped_with_what_to_do(cloud, run):
    server = cloud.add_server("host1", status="ERROR")

    result = run("host-evacuate-live", hosts=["host1"], dry_run=True)

    reason = entry_of(result, server.id)["skip_reason"]
    assert reason.startswith("server-state: ERROR: only ACTIVE or PAUSED "
                             "servers move live; the server is in ERROR")
    assert "openstack server set --state active" in reason
    assert result.exit_code == ExitCode.OK


def test_a_shelved_offloaded_server_is_refused_with_what_to_do(cloud, run):
    server = cloud.add_server("host1")
    cloud.shelve(server.id)

    with pytest.raises(exceptions.PreflightFailed) as caught:
        run("live-migrate", servers=[server.id])

    message = str(caught.value)
    assert "SHELVED_OFFLOADED: only ACTIVE or PAUSED servers move live; " \
        "it is shelved and offloaded: on no host" in message
    assert "(and" not in message  # source-service has nothing to say
    plan = caught.value.plan[server.id]
    assert plan["checks"]["source-service"] == {
        "status": base.PASS, "message": "on no host: nothing to check"}


# -- servers deleted while the run goes on ---------------------------------

def deleting_on(cloud, event, victim):
    """A listener that deletes ``victim`` at the run's first ``event``."""
    done = threading.Event()

    def listener(name, data):
        if name == event and not done.is_set():
            done.set()
            cloud.delete_server(victim)

    return listener


def test_a_server_deleted_after_the_plan_is_skipped(cloud, run_with):
    kept = cloud.add_server("host1", name="a-kept")
    deleted = cloud.add_server("host1", name="b-deleted")

    result = run_with("host-evacuate-live", hosts=["host1"],
                      listeners=[deleting_on(cloud, "plan.ready",
                                             deleted.id)])

    outcome = outcome_of(result, deleted.id)
    assert outcome["status"] == "skipped"
    assert outcome["reason"] == moves.GONE
    assert outcome_of(result, kept.id)["status"] == "migrated"
    assert result.exit_code == ExitCode.OK
    assert result.hosts[0]["empty"] is True


def test_a_server_deleted_while_it_moves_is_skipped(cloud, run_with):
    cloud.steps = 20
    server = cloud.add_server("host1")

    result = run_with("host-evacuate-live", hosts=["host1"],
                      listeners=[deleting_on(cloud, "server.started",
                                             server.id)])

    outcome = outcome_of(result, server.id)
    assert outcome["status"] == "skipped"
    assert outcome["reason"] == moves.GONE_WHILE_MOVING
    assert result.exit_code == ExitCode.OK


# -- server groups -----------------------------------------------------------

def test_hard_affinity_members_sharing_a_host_are_left_whole(cloud, run):
    group = cloud.add_server_group("db", models.AFFINITY)
    members = [cloud.add_server("host1", name=f"db-{i}", group=group.id)
               for i in range(2)]
    other = cloud.add_server("host1", name="web")

    result = run("host-evacuate-live", hosts=["host1"])

    for member in members:
        outcome = outcome_of(result, member.id)
        assert outcome["status"] == "skipped"
        assert "member of affinity server group db" in outcome["reason"]
        assert "1 other member(s) on host1" in outcome["reason"]
        assert "live-migrate --force SERVER HOST" in outcome["reason"]
        assert cloud.servers[member.id].host == "host1"
    assert outcome_of(result, other.id)["status"] == "migrated"
    assert cloud.calls["live_migrate"] == 1
    assert cloud.calls["list_server_groups"] == 1


def test_a_hard_affinity_member_joins_the_others_elsewhere(cloud, run):
    group = cloud.add_server_group("db", models.AFFINITY)
    member = cloud.add_server("host1", group=group.id)
    cloud.add_server("host3", group=group.id)

    result = run("host-evacuate-live", hosts=["host1"])

    assert outcome_of(result, member.id)["status"] == "migrated"
    assert cloud.servers[member.id].host == "host3"
    checks = entry_of(result, member.id)["checks"]
    assert checks["server-groups"]["message"].endswith(
        "joins its other members on host3")


def test_a_hard_affinity_member_is_not_sent_away_from_the_others(cloud,
                                                                 run):
    group = cloud.add_server_group("db", models.AFFINITY)
    member = cloud.add_server("host1", group=group.id)
    cloud.add_server("host3", group=group.id)

    with pytest.raises(exceptions.PreflightFailed) as caught:
        run("live-migrate", servers=[member.id], target_host="host2")

    assert "whose other members are on host3: Nova's scheduler sends it " \
        "only there, not to host2" in str(caught.value)
    assert cloud.writes == []


def test_a_forced_affinity_member_moves_with_a_warning(cloud, run):
    group = cloud.add_server_group("db", models.AFFINITY)
    member = cloud.add_server("host1", name="db-1", group=group.id)
    cloud.add_server("host1", name="db-2", group=group.id)

    result = run("live-migrate", servers=[member.id], target_host="host2",
                 force=True)

    outcome = outcome_of(result, member.id)
    assert outcome["status"] == "migrated"
    assert "move its other members (db-2) onto host2 too" in \
        outcome["reason"]


def test_an_anti_affinity_target_holding_a_member_is_refused(cloud, run):
    group = cloud.add_server_group("web", models.ANTI_AFFINITY)
    member = cloud.add_server("host1", name="web-1", group=group.id)
    cloud.add_server("host2", name="web-2", group=group.id)

    with pytest.raises(exceptions.PreflightFailed) as caught:
        run("live-migrate", servers=[member.id], target_host="host2")

    assert "target host host2 holds web-2 already" in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert cloud.writes == []


def test_an_anti_affinity_drain_says_which_members_no_host_can_take(
        conf, run):
    cloud = fake.FakeCompute(3, steps=1)
    group = cloud.add_server_group("web", models.ANTI_AFFINITY)
    first = cloud.add_server("host1", name="web-1", group=group.id)
    second = cloud.add_server("host1", name="web-2", group=group.id)
    cloud.add_server("host2", name="web-3", group=group.id)
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=["host1"])

    result = runner_mod.Runner(conf.conf, cloud).run(request)

    assert outcome_of(result, first.id)["status"] == "migrated"
    assert cloud.servers[first.id].host == "host3"
    outcome = outcome_of(result, second.id)
    assert outcome["status"] == "skipped"
    assert "every host left to it holds its share already (host2, host3)" \
        in outcome["reason"]
    assert cloud.servers[second.id].host == "host1"


def test_anti_affinity_allows_max_server_per_host(conf, cloud):
    group = cloud.add_server_group("web", models.ANTI_AFFINITY,
                                   rules={"max_server_per_host": 2})
    member = cloud.add_server("host1", group=group.id)
    cloud.add_server("host2", group=group.id)

    verdict = check(conf, cloud, preflight.ServerGroupCheck, member,
                    "live-migrate", target_host="host2")[member.id]

    assert verdict.status == base.PASS


def in_flight_overlaps(cloud, members):
    """Record, at every request to move a member, how many other members
    were moving."""
    seen = []
    original = cloud.live_migrate

    def live_migrate(server_id, *args, **kwargs):
        if server_id in members:
            seen.append(sum(
                1 for m in cloud.migrations
                if m.record.server_id in members
                and not m.record.is_final))
        return original(server_id, *args, **kwargs)

    cloud.live_migrate = live_migrate
    return seen


def test_anti_affinity_members_move_one_at_a_time(conf):
    # host2 has far more room: Nova's scheduler (the fake's too) would
    # send every member there if they moved at once.
    cloud = fake.FakeCompute(["host1", "host2", "host3", "host4", "host5"],
                             steps=3, max_concurrent_live_migrations=3)
    cloud.capacity["host2"] = models.HostCapacity("host2", 512, 10 ** 7,
                                                  10 ** 5)
    group = cloud.add_server_group("web", models.ANTI_AFFINITY)
    members = [cloud.add_server("host1", name=f"web-{i}", group=group.id).id
               for i in range(3)]
    others = [cloud.add_server("host1", name=f"app-{i}").id
              for i in range(3)]
    overlaps = in_flight_overlaps(cloud, set(members))
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE,
        hosts=["host1"], max_concurrent=3)

    result = runner_mod.Runner(conf.conf, cloud).run(request)

    assert result.exit_code == ExitCode.OK, result.outcomes
    assert overlaps == [0, 0, 0]
    assert len({cloud.servers[m].host for m in members}) == 3
    for member in members:
        checks = result.plan[member]
        assert checks["exclusive"] == [group.id]
    assert all(cloud.servers[o].host != "host1" for o in others)


def test_anti_affinity_members_of_two_hosts_move_one_at_a_time(conf):
    cloud = fake.FakeCompute(["host1", "host2", "host3", "host4", "host5"],
                             steps=3)
    cloud.capacity["host3"] = models.HostCapacity("host3", 512, 10 ** 7,
                                                  10 ** 5)
    group = cloud.add_server_group("web", models.ANTI_AFFINITY)
    members = {cloud.add_server("host1", group=group.id).id,
               cloud.add_server("host2", group=group.id).id}
    overlaps = in_flight_overlaps(cloud, members)
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE,
        hosts=["host1", "host2"])

    result = runner_mod.Runner(conf.conf, cloud).run(request)

    assert result.exit_code == ExitCode.OK, result.outcomes
    assert overlaps == [0, 0]
    assert len({cloud.servers[m].host for m in members}) == 2


def test_the_policy_is_verified_after_each_move(conf, cloud):
    group = cloud.add_server_group("web", models.ANTI_AFFINITY)
    member = cloud.add_server("host1", name="web-1", group=group.id)
    cloud.add_server("host2", name="web-2", group=group.id)
    # The member landed beside the other one (a scheduler without the
    # anti-affinity filter).
    cloud.servers[member.id] = dataclasses.replace(
        cloud.servers[member.id], host="host2")
    moved = base.Moved(member.id, constants.LIVE, "host1",
                       before=member.to_dict(),
                       after=cloud.servers[member.id].to_dict())
    shown = {"id": group.id, "name": "web", "policy": group.policy,
             "members": list(cloud.server_groups[group.id].members),
             "max_per_host": 1}
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.LIVE_MIGRATE, servers=[member.id])
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)
    task = verify.ServerGroupPolicy(plugin_name="server-group-policy",
                                    server_id=member.id)

    with pytest.raises(exceptions.VerificationFailed) as caught:
        task.execute(runtime, moved.to_dict(), request.to_dict(),
                     {member.id: {"server_group": shown}})

    assert str(caught.value) == (
        "server-group-policy: anti-affinity server group web broken: host2 "
        "holds web-2 too (the group allows 1 per host)")
    assert task.execute(runtime, moved.to_dict(), request.to_dict(),
                        {member.id: {"server_group": None}})["status"] == \
        base.PASS


@pytest.mark.parametrize("policy", [models.SOFT_AFFINITY,
                                    models.SOFT_ANTI_AFFINITY])
def test_soft_policies_are_noted_not_enforced(cloud, run, policy):
    group = cloud.add_server_group("soft", policy)
    members = [cloud.add_server("host1", group=group.id) for _ in range(2)]

    result = run("host-evacuate-live", hosts=["host1"])

    for member in members:
        outcome = outcome_of(result, member.id)
        assert outcome["status"] == "migrated"
        assert f"member of {policy} server group soft" in outcome["reason"]
        assert "noted, not checked" in outcome["reason"]


def test_servers_in_no_group_cost_one_read_of_the_groups(cloud, run):
    for _ in range(3):
        cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"])

    assert result.exit_code == ExitCode.OK
    assert cloud.calls["list_server_groups"] == 1


def test_hard_affinity_on_a_failed_host_says_how_to_evacuate(cloud, run):
    group = cloud.add_server_group("db", models.AFFINITY)
    members = [cloud.add_server("host1", group=group.id) for _ in range(2)]
    cloud.set_service("host1", state="down")

    result = run("host-evacuate", hosts=["host1"], dry_run=True)

    for member in members:
        reason = entry_of(result, member.id)["skip_reason"]
        assert "evacuate each member onto one host past the scheduler " \
            "('nova evacuate --force SERVER HOST'" in reason


class ShelveKind(moves_base.MoveKind):
    """A kind of move a plugin adds."""

    name = "test-shelve"
    throttle_pool = "cold"
    migration_type = None
    start_task = "x"
    wait_task = "y"
    movable_statuses = frozenset({"ACTIVE"})


def test_non_live_servers_may_name_a_kind_a_plugin_adds(conf, cloud,
                                                        monkeypatch):
    kinds = dict(registry.installed(), **{"test-shelve": ShelveKind()})
    monkeypatch.setattr(registry, "installed", lambda: kinds)
    conf.config(group="drain", non_live_servers="test-shelve")
    server = cloud.add_server("host1", flavor="m1.vgpu")
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=["host1"])

    planning.check_request(request)

    assert planning.planned_action(server, request) == (
        "test-shelve", "its flavor m1.vgpu gives it vGPUs (resources:VGPU=1)"
        ": Nova does not live-migrate it; test-shelve instead ([drain] "
        "non_live_servers)")


def test_a_stopped_pci_server_is_cold_migrated_as_any_stopped_one(conf,
                                                                 cloud):
    server = cloud.add_server("host1", flavor="m1.pci", status="SHUTOFF")

    verdict = one(check(conf, cloud, preflight.ServerStateCheck, server))

    assert (verdict.status, verdict.message) == (base.PASS,
                                                 "SHUTOFF: cold-migrated")
    assert verdict.data == {"action": constants.COLD}
