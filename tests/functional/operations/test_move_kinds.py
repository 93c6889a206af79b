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
"""``move --kind``: a kind of move chosen by name, against the sandbox's
Nova, with a built-in kind and with the out-of-tree example package
``nmf-acme-moves`` (doc/source/examples/), whose "shelve-unshelve" kind
shelve-offloads a server and unshelves it onto another host. Nova writes no
migration record for that: the kind says so, and nothing assumes one."""

import pytest

from nova_migrate_flows.moves import registry
from tests.functional.operations import cli

pytestmark = pytest.mark.functional

SHELVE = "shelve-unshelve"
#: The preflight checks without the target host's: the test sends a server
#: to a disabled host, which Nova's scheduler then refuses.
NO_TARGET_CHECK = (
    "[migration]\npreflight_tasks = server-state,source-service,storage,"
    "config-drive,flavor-disks,flavor\n"
)


@pytest.fixture(autouse=True)
def _example_installed(example_move_kind):
    assert SHELVE in registry.installed()


def test_a_plugin_kind_moves_a_server(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", name_prefix="shelve")

    ran = nmf("move", "--kind", SHELVE, server["id"], "host3",
              "--format", "json")

    assert ran.code == 0, ran.err
    result = ran.result_of(server["id"])
    assert (result["status"], result["action"], result["destination"]) == (
        "migrated", SHELVE, "host3")
    assert result["migration_id"] is None
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host3", "ACTIVE")
    assert list(sdk.compute.migrations(instance_uuid=server["id"])) == []
    actions = [a.action for a in sdk.compute.server_actions(server["id"])]
    assert actions.count("shelve") == actions.count("unshelve") == 1


def test_a_plugin_kind_refuses_what_it_cannot_move(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", stopped=True)
    before = cli.snapshot(sdk)

    ran = nmf("move", "--kind", SHELVE, server["id"], "host3")

    assert ran.code == 2, ran.err
    assert "SHUTOFF: shelve-unshelve moves only ACTIVE servers" in \
        ran.error_line()
    assert cli.snapshot(sdk) == before


def test_a_failed_plugin_move_is_undone(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1")
    (host2,) = [s for s in sdk.compute.services(binary="nova-compute")
                if s.host == "host2"]
    sdk.compute.disable_service(host2, disabled_reason="test")

    ran = nmf.configured(NO_TARGET_CHECK, "move", "--kind", SHELVE,
                         server["id"], "host2", "--format", "json")

    assert ran.code == 1, ran.err
    result = ran.result_of(server["id"])
    assert result["status"] == "failed"
    assert "No valid host" in result["reason"]
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host1", "ACTIVE")
    actions = [a.action for a in sdk.compute.server_actions(server["id"])]
    assert actions.count("unshelve") == 2


def test_move_with_a_builtin_kind(nmf, boot_servers, sdk):
    (server,) = boot_servers("host1", stopped=True)

    ran = nmf("move", "--kind", "cold-migrate", server["id"], "host2",
              "--format", "json")

    assert ran.code == 0, ran.err
    result = ran.result_of(server["id"])
    assert (result["status"], result["action"]) == ("migrated",
                                                    "cold-migrate")
    after = sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host2", "SHUTOFF")
    (migration,) = sdk.compute.migrations(instance_uuid=server["id"])
    assert (migration.migration_type, migration.id) == (
        "migration", result["migration_id"])
