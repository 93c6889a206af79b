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
"""Kinds of move: the registry, what each built-in kind says, planning, and
the ``move`` command, against the in-memory cloud."""

import pytest

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.cli import main as cli
from nova_migrate_flows.compute import connection, fake, models
from nova_migrate_flows.flows import building
from nova_migrate_flows.moves import base, builtin, planning, registry
from nova_migrate_flows.request import Operation

BUILTIN = {
    constants.LIVE: builtin.LiveMigration,
    constants.COLD: builtin.ColdMigration,
    constants.RESIZE: builtin.Resize,
    constants.EVACUATE: builtin.Evacuation,
}


def server(status: str = "ACTIVE", **fields) -> models.Server:
    return models.Server(id="s1", name="web-1", status=status,
                         host="host1", flavor={}, **fields)


def test_the_builtin_kinds_are_registered_under_their_names():
    kinds = registry.installed()

    for name, kind_class in BUILTIN.items():
        assert type(kinds[name]) is kind_class
        assert kinds[name].name == name


def test_an_unknown_kind_names_the_installed_ones():
    with pytest.raises(exceptions.PluginError) as caught:
        registry.get("teleport")

    message = str(caught.value)
    assert message.startswith("no move kind called 'teleport'; installed "
                              "kinds: ")
    for name in BUILTIN:
        assert name in message
    assert caught.value.exit_code == exceptions.ExitCode.BAD_INPUT


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_task_of_a_builtin_kind_is_an_installed_core_task(name):
    start, wait, settle, finish = building.kind_tasks(name)
    kind = registry.get(name)

    assert start(server_id="s1", kind=name).name == \
        constants.start_atom(name, "s1")
    assert wait(server_id="s1", kind=name).name == \
        constants.wait_atom(name, "s1")
    assert (settle is None) == (kind.settle_task is None)
    assert (finish is None) == (kind.finish_task is None)


@pytest.mark.parametrize("name, verified, outcome", [
    (constants.LIVE, "moved[s1]", "moved[s1]"),
    (constants.COLD, "moved[s1]", "final[s1]"),
    (constants.RESIZE, "moved[s1]", "final[s1]"),
    (constants.EVACUATE, "final[s1]", "final[s1]"),
])
def test_what_the_verifications_and_the_outcome_read(name, verified,
                                                     outcome):
    kind = registry.get(name)

    assert kind.verified_key("s1") == verified
    assert kind.outcome_key("s1") == outcome


@pytest.mark.parametrize("name, status, refusal", [
    (constants.LIVE, "SHUTOFF",
     "SHUTOFF: only ACTIVE or PAUSED servers move live"),
    (constants.COLD, "PAUSED",
     "PAUSED: only ACTIVE or SHUTOFF servers can be cold-migrated"),
    (constants.RESIZE, "ERROR",
     "ERROR: only ACTIVE or SHUTOFF servers can be resized"),
    (constants.EVACUATE, "SHELVED_OFFLOADED",
     "SHELVED_OFFLOADED: Nova cannot evacuate a server in this state"),
    (constants.LIVE, "ACTIVE", None),
    (constants.EVACUATE, "ERROR", None),
])
def test_which_states_each_kind_moves(name, status, refusal):
    assert registry.get(name).refusal(server(status)) == refusal


def test_a_kind_s_default_refusal_and_end_state():
    class Teleport(base.MoveKind):
        name = "teleport"
        throttle_pool = "cold"
        migration_type = None
        start_task = "x"
        wait_task = "y"
        movable_statuses = frozenset({"ACTIVE", "PAUSED"})

    kind = Teleport()

    assert kind.refusal(server("SHUTOFF")) == \
        "SHUTOFF: teleport moves only ACTIVE or PAUSED servers"
    assert not kind.records_migration
    assert kind.end_state_error(server(), server("SHUTOFF")) == \
        "status SHUTOFF, was ACTIVE"
    assert kind.end_state_error(
        server(power_state=1), server(power_state=4)) == \
        "power state 4, was 1"
    assert kind.end_state_error(server(), server()) is None


def test_a_live_migration_already_running_is_adopted():
    kind = registry.get(constants.LIVE)
    migrating = server("MIGRATING", task_state="migrating")

    assert kind.refusal(migrating) is None
    assert kind.adopts(migrating)
    assert not registry.get(constants.COLD).adopts(
        server(task_state="resize_prep"))


@pytest.mark.parametrize("operation, kind", [
    (Operation.LIVE_MIGRATE, constants.LIVE),
    (Operation.HOST_EVACUATE_LIVE, constants.LIVE),
    (Operation.HOST_SERVERS_MIGRATE, constants.COLD),
    (Operation.RESIZE, constants.RESIZE),
    (Operation.HOST_EVACUATE, constants.EVACUATE),
])
def test_each_operation_moves_with_its_kind(operation, kind):
    request = request_mod.MoveRequest(operation=operation.value)

    assert planning.kind_name(request) == kind


def test_a_move_request_moves_with_the_kind_it_names():
    request = request_mod.MoveRequest(operation="move", kind=constants.COLD)

    assert planning.planned_action(server("SHUTOFF"), request) == (
        constants.COLD, "")
    assert not planning.moves_live(request)


def test_a_move_names_its_kind(conf):
    with pytest.raises(exceptions.InvalidInput, match="^--kind: name"):
        request_mod.build_request(conf.conf, Operation.MOVE,
                                  servers=["s1"])


def run(capsys, config, *argv):
    code = cli.main(["--config-file", config, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "nmf.conf"
    path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
                    "[nova]\ncloud = test\n")
    return str(path)


@pytest.mark.parametrize("kind, message", [
    ("teleport", "nova-migrate-flow: error: no move kind called "
     "'teleport'; installed kinds: "),
    ("resize", "nova-migrate-flow: error: --kind resize: a resize needs "
     "the new flavor; use 'nova-migrate-flow resize SERVER FLAVOR'"),
], ids=["unknown", "resize"])
def test_move_refuses_a_kind_it_cannot_use(capsys, config, monkeypatch,
                                           kind, message):
    cloud = fake.FakeCompute(3)
    cloud.add_server("host1", name="web")
    monkeypatch.setattr(connection, "compute_from_conf", lambda conf: cloud)

    code, _, err = run(capsys, config, "move", "--kind", kind, "web")

    lines = [line for line in err.splitlines() if line.strip()]
    assert code == exceptions.ExitCode.BAD_INPUT
    assert len(lines) == 1, err
    assert lines[0].startswith(message)
    assert cloud.writes == []


@pytest.mark.parametrize("kind, status, target", [
    (constants.COLD, "SHUTOFF", "host2"),
    (constants.LIVE, "ACTIVE", "host3"),
])
def test_move_with_a_builtin_kind(run, cloud, kind, status, target):
    moved = cloud.add_server("host1", status=status)

    result = run("move", servers=[moved.id], kind=kind, target_host=target)

    (outcome,) = result.outcomes
    assert outcome["status"] == "migrated", outcome
    assert outcome["action"] == kind
    assert cloud.servers[moved.id].host == target
    assert cloud.servers[moved.id].status == status


def test_move_with_a_kind_that_cannot_move_the_server(run, cloud):
    paused = cloud.add_server("host1", status="PAUSED")

    with pytest.raises(exceptions.PreflightFailed,
                       match="only ACTIVE or SHUTOFF servers can be "
                       "cold-migrated"):
        run("move", servers=[paused.id], kind=constants.COLD)

    assert cloud.servers[paused.id].host == "host1"
