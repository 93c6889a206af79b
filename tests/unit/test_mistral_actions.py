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
"""The Mistral actions against the fake cloud: how results and errors reach
Mistral, and what Mistral sees of the actions' parameters."""

import inspect
import json
import subprocess
import sys

import pytest
from mistral_lib import actions as mistral_actions
from mistral_lib import serialization
from mistral_lib.actions import context as mistral_context

from nova_migrate_flows.compute import connection
from nova_migrate_flows.mistral import actions

ACTIONS = [
    actions.LiveMigrateAction,
    actions.HostEvacuateLiveAction,
    actions.HostServersMigrateAction,
    actions.ResizeAction,
    actions.HostEvacuateAction,
    actions.MaintenanceEnterAction,
    actions.MaintenanceExitAction,
    actions.MaintenanceRollAction,
]


@pytest.fixture
def context():
    return mistral_context.ActionContext(
        security_ctx=mistral_context.SecurityContext(project_id="admin"),
        execution_ctx=mistral_context.ExecutionContext(
            workflow_execution_id="wf-1", action_execution_id="ac-1",
            workflow_name="drain"))


@pytest.fixture
def config(tmp_path, cloud, monkeypatch):
    """The tool's configuration for the fake cloud (which every action of
    the test reaches instead of Nova)."""
    monkeypatch.setattr(connection, "compute_from_conf", lambda conf: cloud)
    path = tmp_path / "nmf.conf"
    path.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
        "[migration]\npoll_interval = 0.02\npoll_interval_min = 0.01\n")
    return str(path)


def test_a_live_migration_returns_the_command_lines_json(cloud, config,
                                                         context):
    server = cloud.add_server("host1", name="web")

    result = actions.LiveMigrateAction(
        "web", target_host="host3", config_file=config).run(context)

    assert result.is_success(), result.error
    (outcome,) = result.data["results"]
    assert (outcome["server"], outcome["status"], outcome["source"],
            outcome["destination"]) == (server.id, "migrated", "host1",
                                        "host3")
    assert result.data["summary"] == {"migrated": 1, "failed": 0,
                                      "skipped": 0}
    assert json.loads(json.dumps(result.data)) == result.data
    assert cloud.servers[server.id].host == "host3"


def test_an_unknown_server_is_an_error_result_and_changes_nothing(
        cloud, config, context):
    cloud.add_server("host1", name="web")

    result = actions.LiveMigrateAction("nope", config_file=config).run(
        context)

    assert result.is_error()
    assert result.error.pop("error").startswith(
        "server 'nope': no server has this name or id")
    assert result.error == {"operation": "live-migrate", "results": [],
                            "exit_code": 2}
    assert cloud.writes == []


@pytest.mark.parametrize(("make", "message"), [
    (lambda config: actions.HostEvacuateLiveAction(
        "host1", block_migration="sometimes", config_file=config),
     "block_migration 'sometimes': must be true, false or 'auto'"),
    (lambda config: actions.HostServersMigrateAction(
        ["host1", "host1"], config_file=config),
     "HOST: a host is given twice: host1 host1"),
    (lambda config: actions.ResizeAction(
        "web", "m1.huge", config_file=config),
     "flavor 'm1.huge': no such flavor"),
    (lambda config: actions.HostEvacuateAction("host9", config_file=config),
     "host host9: no nova-compute service there"),
], ids=["block-migration", "host-twice", "unknown-flavor", "unknown-host"])
def test_bad_input_is_an_error_result(cloud, config, context, make, message):
    cloud.add_server("host1", name="web")

    result = make(config).run(context)

    assert result.error["exit_code"] == 2
    assert result.error["error"].startswith(message)
    assert cloud.writes == []


@pytest.mark.parametrize(("text", "message"), [
    (None, "configuration: Failed to find some config files: "),
    ("[drain]\nmax_concurrent_live_migrations = many\n",
     "configuration: [drain] max_concurrent_live_migrations: "),
], ids=["missing-file", "bad-value"])
def test_bad_configuration_is_an_error_result(tmp_path, context, text,
                                              message):
    path = tmp_path / "nmf.conf"
    if text is not None:
        path.write_text(text)

    result = actions.HostEvacuateLiveAction(
        "host1", config_file=str(path)).run(context)

    assert result.error["exit_code"] == 2
    assert result.error["error"].startswith(message)


def test_a_failed_server_makes_an_error_result_with_every_outcome(
        cloud, config, context):
    good = cloud.add_server("host1")
    bad = cloud.add_server("host1")
    cloud.behaviours[bad.id].live = "fail"

    result = actions.HostEvacuateLiveAction(
        ["host1"], config_file=[config]).run(context)

    assert result.is_error()
    statuses = {o["server"]: o["status"] for o in result.error["results"]}
    assert statuses == {good.id: "migrated", bad.id: "failed"}
    assert result.error["exit_code"] == 1
    assert result.error["error"] == (
        "1 of 2 server(s) failed; not emptied: host1")
    assert result.error["summary"]["failed"] == 1


def test_a_dry_run_returns_the_plan_and_changes_nothing(cloud, config,
                                                        context):
    server = cloud.add_server("host1")

    result = actions.HostServersMigrateAction(
        "host1", dry_run=True, config_file=config).run(context)

    assert result.is_success(), result.error
    assert result.data["dry_run"] is True
    (row,) = result.data["plan"]
    assert (row["server"], row["action"]) == (server.id, "cold-migrate")
    assert cloud.writes == []


def test_an_action_survives_mistrals_serialisation(cloud, config, context):
    """Mistral sends actions to remote executors as JSON."""
    server = cloud.add_server("host1")
    action = actions.HostEvacuateLiveAction(
        "host1", max_concurrent=2, config_file=config)

    serializer = serialization.get_polymorphic_serializer()
    sent = serializer.deserialize(serializer.serialize(action))
    result = sent.run(context)

    assert type(sent) is type(action)
    assert vars(sent) == vars(action)
    assert result.data["results"][0]["server"] == server.id


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.__name__)
def test_mistral_sees_every_parameter_documented(action):
    descriptor = mistral_actions.PythonActionDescriptor("name", action)
    names = [p.split("=")[0] for p in descriptor.params_spec.split(", ")]

    assert names[-2:] == ["config_file", "config_dir"]
    assert names == list(inspect.signature(action).parameters)
    for name in names:
        assert f":param {name}:" in descriptor.description


def test_maintenance_enter_then_exit_moves_the_servers_back(cloud, config,
                                                            context):
    server = cloud.add_server("host1")

    entered = actions.MaintenanceEnterAction(
        "host1", reason="firmware", config_file=config).run(context)
    assert entered.is_success(), entered.error
    assert cloud.get_server(server.id).host != "host1"
    assert "firmware" in cloud.services["host1"].disabled_reason

    left = actions.MaintenanceExitAction(
        "host1", move_back=True, config_file=config).run(context)
    assert left.is_success(), left.error
    assert cloud.get_server(server.id).host == "host1"
    assert cloud.services["host1"].status == "enabled"


def test_a_roll_that_stops_is_an_error_result(cloud, config, context):
    cloud.add_server("host1")

    result = actions.MaintenanceRollAction(
        ["host1", "host2"], hook="exit 1", config_file=config).run(context)

    assert result.is_error()
    assert result.error["exit_code"] == 1
    assert result.error["error"] == "0 of 1 server(s) failed; not done: " \
        "host1, host2"


def test_importing_the_actions_prints_no_warning():
    """Not TaskFlow's eventlet deprecation warning, for one (with
    Python's default warning filters, as Mistral's executor runs)."""
    imported = subprocess.run(
        [sys.executable, "-c",
         "import nova_migrate_flows.mistral.actions"],
        capture_output=True, text=True, check=True)

    assert imported.stderr == ""
