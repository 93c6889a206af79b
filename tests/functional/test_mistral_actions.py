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
"""The Mistral actions, loaded through their entry points the way Mistral
loads them, run against the sandbox's Nova."""

import json
from typing import Any

import pytest
from mistral_lib.actions import context as mistral_context
from stevedore import extension

from nova_migrate_flows.sandbox import constants
from tests.functional.operations import cli

# Every compute up and enabled again after each test.


pytestmark = [pytest.mark.functional, pytest.mark.usefixtures("restore_cloud")]

NAMES = [
    "nova_migrate_flows.host_evacuate",
    "nova_migrate_flows.host_evacuate_live",
    "nova_migrate_flows.host_maintenance_enter",
    "nova_migrate_flows.host_maintenance_exit",
    "nova_migrate_flows.host_maintenance_roll",
    "nova_migrate_flows.host_servers_migrate",
    "nova_migrate_flows.live_migrate",
    "nova_migrate_flows.resize",
]


@pytest.fixture(scope="module")
def mistral_actions() -> dict[str, Any]:
    """Our action classes, by name, from the ``mistral.actions`` group."""
    manager = extension.ExtensionManager(
        "mistral.actions", on_load_failure_callback=_raise)
    return {e.name: e.plugin for e in manager
            if e.name.startswith("nova_migrate_flows.")}


def _raise(manager: Any, entry_point: Any, exc: Exception) -> None:
    raise exc


@pytest.fixture
def run_action(mistral_actions, sandbox, tmp_path):
    """Run an action as a Mistral executor would: instantiated from the
    task's input, with the sandbox's configuration and one of this test
    (its own state directory), then ``run(context)``."""
    config = [sandbox.config_file, cli.write_config(tmp_path)]
    context = mistral_context.ActionContext(
        security_ctx=mistral_context.SecurityContext(
            project_name=constants.ADMIN_PROJECT,
            user_name=constants.ADMIN_USER),
        execution_ctx=mistral_context.ExecutionContext(
            workflow_execution_id="wf-exec", task_execution_id="task-exec",
            action_execution_id="action-exec", workflow_name="maintenance"))

    def run(name: str, **task_input: Any) -> Any:
        action = mistral_actions[name](config_file=config, **task_input)
        result = action.run(context)
        json.dumps(result.data if result.is_success() else result.error)
        return result

    return run


def by_server(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["server"]: r for r in results}


def test_every_action_is_registered(mistral_actions):
    assert sorted(mistral_actions) == NAMES


def test_live_migrate(run_action, boot_servers, sdk, tmp_path):
    (server,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=1))

    result = run_action("nova_migrate_flows.live_migrate",
                        server=server["name"], target_host="host3")

    assert result.is_success(), result.error
    assert result.data["operation"] == "live-migrate"
    (outcome,) = result.data["results"]
    assert outcome["server"] == server["id"]
    assert (outcome["status"], outcome["source"], outcome["destination"]) == (
        "migrated", "host1", "host3")
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host3", "ACTIVE")
    (migration,) = cli.live_migrations(sdk, server["id"])
    assert migration.status == "completed"
    assert outcome["migration_id"] == migration.id
    assert (tmp_path / "state" / "nova-migrate-flows.sqlite").exists()


def test_host_evacuate_live_with_a_failing_server(run_action, boot_servers,
                                                  sdk):
    good = boot_servers("host1", count=2,
                        metadata=cli.server_metadata(duration=1))
    (bad,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=1, result=constants.RESULT_FAIL))

    result = run_action("nova_migrate_flows.host_evacuate_live",
                        hosts="host1", max_concurrent=2)

    assert result.is_error()
    error = result.error
    assert error["exit_code"] == 1
    assert error["error"] == "1 of 3 server(s) failed; not emptied: host1"
    outcomes = by_server(error["results"])
    assert outcomes[bad["id"]]["status"] == "failed"
    for server in good:
        after = sdk.compute.get_server(server["id"])
        assert outcomes[server["id"]]["status"] == "migrated"
        assert outcomes[server["id"]]["destination"] == after.compute_host
        assert after.compute_host in {"host2", "host3", "host4"}
    assert sdk.compute.get_server(bad["id"]).compute_host == "host1"
    (host,) = error["hosts"]
    assert (host["host"], host["empty"]) == ("host1", False)


def test_host_servers_migrate(run_action, boot_servers, sdk):
    running = boot_servers("host2")
    stopped = boot_servers("host2", stopped=True)

    result = run_action("nova_migrate_flows.host_servers_migrate",
                        hosts=["host2"], target_host="host4")

    assert result.is_success(), result.error
    assert result.data["summary"] == {"migrated": 2, "failed": 0,
                                      "skipped": 0}
    for server, status in ((running[0], "ACTIVE"), (stopped[0], "SHUTOFF")):
        after = sdk.compute.get_server(server["id"])
        assert (after.compute_host, after.status) == ("host4", status)
    (host,) = result.data["hosts"]
    assert (host["empty"], host["service"]) == (True, "disabled")


def test_resize_without_confirming(run_action, boot_servers, sdk):
    (server,) = boot_servers("host1", flavor="m1.tiny")

    result = run_action("nova_migrate_flows.resize", server=server["id"],
                        flavor="m1.small", confirm=False)

    assert result.is_success(), result.error
    assert result.data["results"][0]["status"] == "migrated"
    after = sdk.compute.get_server(server["id"])
    assert (after.flavor.name, after.status) == ("m1.small", "VERIFY_RESIZE")
    sdk.compute.confirm_server_resize(server["id"])
    cli.wait_until(
        lambda: sdk.compute.get_server(server["id"]).status == "ACTIVE")


def test_host_evacuate_of_a_dead_host(run_action, boot_servers, sdk,
                                      sandbox_client):
    (server,) = boot_servers("host4")
    sandbox_client.stop_compute("host4")

    result = run_action("nova_migrate_flows.host_evacuate", host="host4",
                        force_down=True)

    assert result.is_success(), result.error
    (outcome,) = result.data["results"]
    after = sdk.compute.get_server(server["id"])
    assert after.compute_host == outcome["destination"] != "host4"
    assert after.status == "ACTIVE"


@pytest.mark.parametrize(("name", "task_input", "message"), [
    ("nova_migrate_flows.live_migrate",
     {"server": "00000000-0000-4000-8000-000000000000"},
     "server 00000000-0000-4000-8000-000000000000: no such server"),
    ("nova_migrate_flows.live_migrate", {"server": "no-such-server"},
     "server 'no-such-server': no server has this name or id"),
    ("nova_migrate_flows.host_evacuate", {"host": "host1"}, "host1 is up"),
], ids=["unknown-id", "unknown-name", "host-evacuate-of-a-live-host"])
def test_bad_input_changes_nothing(run_action, boot_servers, sdk, name,
                                   task_input, message):
    boot_servers("host1")
    before = cli.snapshot(sdk)

    result = run_action(name, **task_input)

    assert result.is_error()
    assert result.error["exit_code"] == 2
    assert result.error["results"] == []
    assert message in result.error["error"]
    assert cli.snapshot(sdk) == before
