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
"""Host maintenance against the in-memory cloud: the marker, the return
rules, the service and hook tasks, and whole enter/exit/roll runs."""

import dataclasses

import pytest

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.engine import maintenance, persistence
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.engine import roll as roll_mod
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import maintenance as tasks
from nova_migrate_flows.tasks import markers


@pytest.fixture
def backend(conf, tmp_path):
    conf.config(state_dir=str(tmp_path))
    backend = persistence.backend_from_conf(conf.conf)
    yield backend
    backend.close()


def runner(conf, cloud, backend):
    return runner_mod.Runner(conf.conf, cloud, backend=backend)


def request(conf, operation, **given):
    return request_mod.build_request(conf.conf, operation, **given)


# -- the marker ---------------------------------------------------------------

def test_a_marker_reads_back_what_it_says():
    marker = markers.new_marker("0b7e-run", "kernel 6.1: (CVE) fix")

    assert markers.parse_marker(marker.text()) == marker
    assert marker.text().startswith("nova-migrate-flows: maintenance since ")


def test_a_long_reason_is_cut_to_what_nova_keeps():
    text = markers.new_marker("r" * 36, "x" * 400).text()

    assert len(text) == markers.REASON_LENGTH
    assert markers.parse_marker(text).run_id == "r" * 36


@pytest.mark.parametrize("reason", [
    None, "", "RMA 12",
    "nova-migrate-flows: evacuated by host-evacuate-live at T (run r1)",
])
def test_other_reasons_are_no_marker(reason):
    assert markers.parse_marker(reason) is None


# -- which servers go back ----------------------------------------------------

def change(cloud, server_id, **changes):
    cloud.servers[server_id] = dataclasses.replace(cloud.servers[server_id],
                                                   **changes)


def moved(cloud, changes=None):
    """A server of host1 that an enter run moved to host2, and then
    ``changes``."""
    server = cloud.add_server("host1")
    before = server.to_dict()
    change(cloud, server.id, **dict({"host": "host2"}, **(changes or {})))
    return before, cloud.get_server(server.id)


@pytest.mark.parametrize(("changes", "why"), [
    ({}, None),
    ({"host": "host3"}, "moved since: it is on host3, not on host2"),
    ({"status": "SHUTOFF"}, "state changed since: SHUTOFF, was ACTIVE"),
    ({"task_state": "migrating"}, "busy: task state migrating"),
])
def test_a_server_goes_back_only_unchanged_where_enter_put_it(
        changes, why):
    cloud = fake.FakeCompute(4)
    before, now = moved(cloud, changes)

    refusal = tasks.return_refusal(before, "host2", now)

    assert refusal == why or refusal.startswith(why)


def test_a_resized_server_stays(conf):
    cloud = fake.FakeCompute(4)
    before, now = moved(cloud)
    bigger = dict(now.flavor, name="m1.large",
                  ram_mb=now.flavor["ram_mb"] * 2)
    change(cloud, now.id, flavor=bigger)

    refusal = tasks.return_refusal(before, "host2", cloud.get_server(now.id))

    assert refusal == "resized since: flavor m1.large, was m1.small"


def test_the_return_plan_skips_a_deleted_server(conf):
    cloud = fake.FakeCompute(4)
    kept, _ = moved(cloud)
    gone, _ = moved(cloud)
    cloud.delete_server(gone["id"])
    move = request(conf, Operation.MAINTENANCE_EXIT, hosts=["host1"],
                   move_back=True)
    runtime = runtime_mod.Runtime(conf.conf, cloud, move)
    rows = [{"server": s["id"], "name": s["name"], "destination": "host2",
             "action": constants.LIVE, "before": s} for s in (kept, gone)]

    plan = tasks.PlanReturn().execute(runtime, move.to_dict(),
                                      {"host1": rows})

    assert plan[kept["id"]]["action"] == constants.LIVE
    assert plan[kept["id"]]["target_host"] == "host1"
    assert plan[gone["id"]]["action"] == constants.SKIP
    assert plan[gone["id"]]["skip_reason"] == \
        "deleted since it was moved away"
    assert plan[gone["id"]]["server"]["host"] == "host2"


# -- the tasks ---------------------------------------------------------------

def enable(conf, cloud):
    move = request(conf, Operation.MAINTENANCE_EXIT, hosts=["host1"])
    runtime = runtime_mod.Runtime(conf.conf, cloud, move)
    task = tasks.EnableService("host1")
    return task, runtime


def test_enable_brings_back_a_host_an_enter_run_disabled(conf):
    cloud = fake.FakeCompute(2)
    text = markers.new_marker("r1", "disk").text()
    cloud.set_service("host1", status="disabled", disabled_reason=text)
    task, runtime = enable(conf, cloud)

    result = task.execute(runtime, "host1")
    assert (result["service"], result["enabled_by_us"]) == ("enabled", True)
    assert cloud.services["host1"].status == "enabled"

    task.revert(runtime, "host1", result)
    assert (cloud.services["host1"].status,
            cloud.services["host1"].disabled_reason) == ("disabled", text)


def test_enable_leaves_a_host_disabled_by_someone_else(conf):
    cloud = fake.FakeCompute(2)
    cloud.set_service("host1", status="disabled", disabled_reason="RMA 12")
    task, runtime = enable(conf, cloud)

    result = task.execute(runtime, "host1")

    assert (result["service"], result["enabled_by_us"]) == ("disabled",
                                                            False)
    assert "RMA 12" in result["reason"]
    assert cloud.services["host1"].status == "disabled"
    assert cloud.writes == []


def hook(conf, command, timeout=None):
    if timeout is not None:
        conf.config(group="maintenance", hook_timeout=timeout)
    move = request(conf, Operation.MAINTENANCE_ROLL, hosts=["host1"],
                   hook=command)
    runtime = runtime_mod.Runtime(conf.conf, fake.FakeCompute(1), move)
    return tasks.RunCommand("host1", plugin_name="run-command").execute(
        runtime, "host1", move.to_dict(), "roll-1")


def test_the_hook_gets_its_host_and_run(conf, tmp_path):
    out = tmp_path / "env"

    result = hook(conf, f'echo "$NMF_HOST $NMF_RUN_ID" > {out}')

    assert result["exit_code"] == 0
    assert out.read_text().split() == ["host1", "roll-1"]


def test_a_failing_hook_says_how_it_failed(conf):
    with pytest.raises(exceptions.HookFailed) as failed:
        hook(conf, "echo firmware update failed >&2; exit 4")

    assert str(failed.value) == (
        "the hook on host1 exited with 4: firmware update failed")


def test_a_hook_that_runs_too_long_fails(conf):
    with pytest.raises(exceptions.HookFailed, match="did not end within 1 s"):
        hook(conf, "sleep 30", timeout=1)


# -- requests -----------------------------------------------------------------

def test_enter_moves_stopped_servers_cold_and_never_enables_after(conf):
    conf.config(group="drain", stopped_servers="skip", enable_after=True)

    move = request(conf, Operation.MAINTENANCE_ENTER, hosts=["host1"])

    assert (move.stopped_servers, move.enable_after) == ("cold-migrate",
                                                         False)


@pytest.mark.parametrize(("given", "message"), [
    ({"batch": 0}, "--batch 0: must be 1 or more"),
    ({"wait_up": 0}, "--wait-up 0: must be more than 0 seconds"),
])
def test_bad_roll_values_are_refused(conf, given, message):
    with pytest.raises(exceptions.InvalidInput, match=message):
        request(conf, Operation.MAINTENANCE_ROLL, hosts=["host1"], **given)


# -- whole runs ---------------------------------------------------------------

def test_enter_then_exit_returns_each_server_with_its_kind(conf, backend):
    cloud = fake.FakeCompute(4, steps=2)
    running = cloud.add_server("host1").id
    stopped = cloud.add_server("host1", status="SHUTOFF").id

    entered = runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_ENTER, hosts=["host1"], reason="bios"))

    assert entered.exit_code == ExitCode.OK
    assert {o["server"]: o["action"] for o in entered.outcomes} == {
        running: constants.LIVE, stopped: constants.COLD}
    marker = markers.parse_marker(cloud.services["host1"].disabled_reason)
    assert (marker.run_id, marker.reason) == (entered.run_id, "bios")
    (row,) = maintenance.status(cloud.list_services(),
                                records_mod.Records(backend))
    assert (row["host"], row["moved"], row["run_state"]) == (
        "host1", 2, "finished")

    left = runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_EXIT, hosts=["host1"], move_back=True))

    assert left.exit_code == ExitCode.OK
    assert {o["server"]: (o["action"], o["status"], o["destination"])
            for o in left.outcomes} == {
        running: (constants.LIVE, "migrated", "host1"),
        stopped: (constants.COLD, "migrated", "host1")}
    assert cloud.services["host1"].status == "enabled"
    assert cloud.get_server(stopped).status == "SHUTOFF"
    assert maintenance.status(cloud.list_services(),
                              records_mod.Records(backend)) == []


def test_a_skipped_server_leaves_enter_unfinished(conf, backend):
    cloud = fake.FakeCompute(4, steps=2)
    cloud.add_server("host1")
    cloud.add_server("host1", status="ERROR")

    entered = runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_ENTER, hosts=["host1"]))

    assert entered.exit_code == ExitCode.SERVERS_FAILED
    assert entered.count("skipped") == 1
    (host,) = entered.hosts
    assert host["empty"] is False
    assert markers.parse_marker(
        cloud.services["host1"].disabled_reason) is not None


def test_exit_without_move_back_moves_nothing(conf, backend):
    cloud = fake.FakeCompute(4, steps=2)
    cloud.add_server("host1")
    runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_ENTER, hosts=["host1"]))
    writes = len(cloud.writes)

    left = runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_EXIT, hosts=["host1"]))

    assert left.exit_code == ExitCode.OK
    assert left.outcomes == []
    assert [w[0] for w in cloud.writes[writes:]] == ["update_service"]


def test_exit_refuses_a_down_host_before_any_change(conf, backend):
    cloud = fake.FakeCompute(4)
    cloud.set_service("host1", state="down")

    with pytest.raises(exceptions.InvalidInput,
                       match="host host1: its compute service is down"):
        runner(conf, cloud, backend).run(request(
            conf, Operation.MAINTENANCE_EXIT, hosts=["host1"]))
    assert cloud.writes == []


def test_a_roll_goes_host_by_host(conf, backend, tmp_path):
    cloud = fake.FakeCompute(4, steps=2)
    homes = {host: cloud.add_server(host).id for host in ("host1", "host2")}
    log = tmp_path / "hooks"

    result = roll_mod.Roll(conf.conf, cloud, backend=backend).run(request(
        conf, Operation.MAINTENANCE_ROLL, hosts=["host1", "host2"],
        batch=1, move_back=True, hook=f"echo $NMF_HOST >> {log}"))

    assert result.exit_code == ExitCode.OK, result.hosts
    assert log.read_text().split() == ["host1", "host2"]
    for host, server_id in homes.items():
        assert cloud.get_server(server_id).host == host
        assert cloud.services[host].status == "enabled"
    book = records_mod.Records(backend).get(result.run_id)
    assert book.meta["state"] == "finished"
    steps = records_mod.describe(book)["steps"]
    assert sorted(steps) == ["1:enter", "1:exit", "2:enter", "2:exit"]
    assert records_mod.Records(backend).get(steps["2:exit"]).meta[
        "request"]["operation"] == "host-maintenance-exit"


def test_a_finished_roll_is_only_read_back(conf, backend, tmp_path):
    """A roll run under a given id, then "resumed" with ``finished_too``
    (a conductor took its Mistral job over after it ended)."""
    cloud = fake.FakeCompute(4, steps=2)
    cloud.add_server("host1")
    log = tmp_path / "hooks"
    roll = roll_mod.Roll(conf.conf, cloud, backend=backend)
    first = roll.run(request(
        conf, Operation.MAINTENANCE_ROLL, hosts=["host1"], move_back=True,
        hook=f"echo $NMF_HOST >> {log}"), run_id="roll-1")
    writes = list(cloud.writes)

    again = roll.resume("roll-1", finished_too=True)

    assert (first.run_id, again.run_id) == ("roll-1", "roll-1")
    assert again.exit_code == ExitCode.OK
    assert (again.outcomes, again.hosts) == (first.outcomes, first.hosts)
    assert cloud.writes == writes
    assert log.read_text().split() == ["host1"]
    with pytest.raises(exceptions.InvalidInput, match="is finished"):
        roll.resume("roll-1")


def test_a_roll_that_stops_on_a_hook_leaves_its_host_in_maintenance(
        conf, backend):
    cloud = fake.FakeCompute(4, steps=2)
    cloud.add_server("host1")

    result = roll_mod.Roll(conf.conf, cloud, backend=backend).run(request(
        conf, Operation.MAINTENANCE_ROLL, hosts=["host1", "host2"],
        batch=1, hook="false"))

    assert result.exit_code == ExitCode.SERVERS_FAILED
    first, second = result.hosts
    assert (first["step"], first["done"]) == ("hook", False)
    assert first["reason"].startswith("hook failed: the hook on host1 "
                                      "exited with 1")
    assert second["step"] == "pending"
    assert markers.parse_marker(
        cloud.services["host1"].disabled_reason) is not None
    assert cloud.services["host2"].status == "enabled"


def test_a_roll_needs_the_records(conf):
    with pytest.raises(exceptions.ConfigurationError, match="persistence"):
        roll_mod.Roll(conf.conf, fake.FakeCompute(1), backend=None)


def test_an_unknown_hook_task_is_refused_before_any_change(conf, backend):
    conf.config(group="maintenance", hook_task="ironic-reboot")
    cloud = fake.FakeCompute(2)
    cloud.add_server("host1")

    with pytest.raises(exceptions.PluginError,
                       match="no task plugin called 'ironic-reboot'"):
        roll_mod.Roll(conf.conf, cloud, backend=backend).run(request(
            conf, Operation.MAINTENANCE_ROLL, hosts=["host1"]))
    assert cloud.writes == []
    assert records_mod.Records(backend).list() == []


def test_the_hook_environment_is_the_process_environment_plus_two(
        conf, tmp_path, monkeypatch):
    out = tmp_path / "env"
    monkeypatch.setenv("NMF_TEST_VISIBLE", "yes")

    hook(conf, f'echo "$NMF_TEST_VISIBLE $NMF_HOST" > {out}')

    assert out.read_text().split() == ["yes", "host1"]


def test_enter_refuses_when_an_anti_affinity_group_cannot_be_kept(
        conf, backend):
    cloud = fake.FakeCompute(3, steps=2)
    group = cloud.add_server_group("db", models.ANTI_AFFINITY)
    for host in ("host1", "host2", "host3"):
        cloud.add_server(host, group=group.id)

    with pytest.raises(exceptions.PreflightFailed,
                       match="member of anti-affinity server group db"):
        runner(conf, cloud, backend).run(request(
            conf, Operation.MAINTENANCE_ENTER, hosts=["host1"]))
    assert cloud.writes == []


def test_enter_skips_a_hard_affinity_pair_and_is_not_done(conf, backend):
    cloud = fake.FakeCompute(3, steps=2)
    group = cloud.add_server_group("db", models.AFFINITY)
    pair = [cloud.add_server("host1", group=group.id).id for _ in range(2)]

    entered = runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_ENTER, hosts=["host1"]))

    assert entered.exit_code == ExitCode.SERVERS_FAILED
    assert {o["server"]: o["status"] for o in entered.outcomes} == {
        server_id: "skipped" for server_id in pair}
    assert markers.parse_marker(
        cloud.services["host1"].disabled_reason).run_id == entered.run_id


def test_a_host_left_not_empty_stops_the_roll_before_its_hook(
        conf, backend, tmp_path):
    cloud = fake.FakeCompute(4, steps=2)
    cloud.add_server("host1", status="ERROR")
    log = tmp_path / "hooks"

    result = roll_mod.Roll(conf.conf, cloud, backend=backend).run(request(
        conf, Operation.MAINTENANCE_ROLL, hosts=["host1", "host2"],
        batch=1, hook=f"echo $NMF_HOST >> {log}"))

    assert result.exit_code == ExitCode.SERVERS_FAILED
    first = result.hosts[0]
    assert (first["step"], first["done"]) == ("enter", False)
    assert first["reason"].startswith("not emptied")
    assert not log.exists()


def test_exit_dry_run_shows_the_returns_and_changes_nothing(conf, backend):
    cloud = fake.FakeCompute(4, steps=2)
    server = cloud.add_server("host1").id
    runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_ENTER, hosts=["host1"]))
    writes = len(cloud.writes)

    dry = runner(conf, cloud, backend).run(request(
        conf, Operation.MAINTENANCE_EXIT, hosts=["host1"], move_back=True,
        dry_run=True))

    assert dry.exit_code == ExitCode.OK
    (row,) = dry.to_json()["plan"]
    assert (row["server"], row["action"], row["target"]) == (
        server, constants.LIVE, "host1")
    assert len(cloud.writes) == writes
    assert cloud.services["host1"].status == "disabled"
