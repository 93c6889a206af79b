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
"""The tool against an older Nova: Zed (Nova 26, compute API 2.1 to 2.93).

The sandbox runs that Nova with Python 3.10, monkey-patched by eventlet,
from a virtualenv of its own (``old_nova_sandbox``); the tool runs here and
negotiates its microversions with it: below 2.95 an evacuation goes at
2.93, and Nova keeps each evacuated server in its state.
"""

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import openstack
import pytest
import requests

import nova_migrate_flows
from nova_migrate_flows.sandbox import __main__ as sandbox_main
from nova_migrate_flows.sandbox import constants, control
from tests.functional import conftest
from tests.functional.operations import cli

pytestmark = pytest.mark.functional

ZED_MAX_MICROVERSION = "2.93"


@pytest.fixture(scope="module")
def old_sdk(
    old_nova_sandbox: control.SandboxInfo,
) -> openstack.connection.Connection:
    return conftest.connect(old_nova_sandbox)


@pytest.fixture
def boot(old_nova_sandbox: control.SandboxInfo,
         old_sdk: openstack.connection.Connection,
         ) -> Iterator[conftest.BootServers]:
    yield from conftest.booting(old_nova_sandbox, old_sdk)


@pytest.fixture
def nmf(old_nova_sandbox: control.SandboxInfo, capsys: Any,
        tmp_path: Any) -> Any:
    """``nova-migrate-flow`` against the Zed sandbox, with ``text`` added to
    the test's configuration."""
    def run(*argv: str, text: str = "") -> cli.Ran:
        return cli.run_cli(capsys, old_nova_sandbox.config_file,
                           cli.write_config(tmp_path, text), *argv)
    return run


def test_the_sandbox_runs_nova_zed(old_nova_sandbox: control.SandboxInfo,
                                   capsys: Any) -> None:
    nova = old_nova_sandbox.nova
    assert nova["release"].startswith("26.")
    assert (nova["min_microversion"], nova["max_microversion"]) == (
        "2.1", ZED_MAX_MICROVERSION)
    assert nova["concurrency"] == "eventlet"
    assert old_nova_sandbox.python["version"].startswith("3.10.")
    # What the API itself serves, and refuses.
    compute = old_nova_sandbox.endpoints["compute"]
    version = requests.get(compute, timeout=10).json()["version"]
    assert (version["min_version"], version["version"]) == (
        "2.1", ZED_MAX_MICROVERSION)
    too_new = requests.get(compute, timeout=10, headers={
        "OpenStack-API-Version": "compute 2.95"})
    assert too_new.status_code == 406

    assert sandbox_main.main(
        ["status", "--state-dir", old_nova_sandbox.state_dir]) == 0
    out = capsys.readouterr().out
    assert (f"Nova {nova['release']} (eventlet, Python 3.10." in out
            and f"compute API 2.1 to {ZED_MAX_MICROVERSION}\n" in out), out
    # The server imports this copy of the package, through a directory
    # that holds only it; nothing was installed in that virtualenv.
    link = os.path.join(old_nova_sandbox.state_dir, "python-path",
                        "nova_migrate_flows")
    assert os.readlink(link) == os.path.dirname(
        os.path.abspath(nova_migrate_flows.__file__))
    found = subprocess.run(
        [old_nova_sandbox.python["executable"], "-c",
         "import importlib.util as u; "
         "print(u.find_spec('nova_migrate_flows'))"],
        capture_output=True, text=True, check=True, timeout=60,
        cwd=old_nova_sandbox.state_dir, env={})
    assert found.stdout.strip() == "None"
    status = control.status(old_nova_sandbox.state_dir)
    assert status["nova"] == nova
    assert {host: (item["state"], item["status"])
            for host, item in status["hosts"].items()} == {
        host: ("up", "enabled") for host in ("host1", "host2", "host3")}


def test_live_migrate(nmf: Any, boot: conftest.BootServers,
                      old_sdk: openstack.connection.Connection) -> None:
    (server,) = boot("host1", metadata=cli.server_metadata(duration=1.5))

    ran = nmf("live-migrate", server["id"], "--format", "json")

    assert ran.code == 0, ran.err
    result = ran.result_of(server["id"])
    assert (result["status"], result["source"]) == ("migrated", "host1")
    moved = old_sdk.compute.get_server(server["id"])
    assert moved.compute_host == result["destination"] != "host1"
    assert moved.status == "ACTIVE"
    (migration,) = cli.live_migrations(old_sdk, server["id"])
    assert migration.status == "completed"
    assert migration.id == result["migration_id"]


def test_a_driver_failure_leaves_the_server_on_its_source(
        nmf: Any, boot: conftest.BootServers,
        old_sdk: openstack.connection.Connection) -> None:
    (server,) = boot("host1", metadata=cli.server_metadata(
        duration=0.5, result=constants.RESULT_FAIL))

    ran = nmf("live-migrate", server["id"], "--format", "json")

    assert ran.code == 1, ran.err
    result = ran.result_of(server["id"])
    assert result["status"] == "failed"
    assert "Nova:" in result["reason"]
    after = old_sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == ("host1", "ACTIVE")
    (migration,) = cli.live_migrations(old_sdk, server["id"])
    assert migration.status == "failed"


@pytest.mark.parametrize(
    ("action", "migration_status", "host"),
    [("abort", "cancelled", "host1"),
     ("force_complete", "completed", "host2")],
    ids=["abort", "force-complete"],
)
def test_a_hanging_migration_hits_its_timeout(
        nmf: Any, boot: conftest.BootServers,
        old_sdk: openstack.connection.Connection, action: str,
        migration_status: str, host: str) -> None:
    (server,) = boot("host1", metadata=cli.server_metadata(
        result=constants.RESULT_HANG))

    ran = nmf("live-migrate", server["id"], "host2", "--format", "json",
              text="[migration]\ncompletion_timeout_min = 2\n"
              "completion_timeout_per_gib = 1\n"
              f"timeout_action = {action}\n")

    assert ran.code == (1 if action == "abort" else 0), ran.err
    (migration,) = cli.live_migrations(old_sdk, server["id"])
    assert migration.status == migration_status
    after = old_sdk.compute.get_server(server["id"])
    assert (after.compute_host, after.status) == (host, "ACTIVE")


def test_host_evacuate_live(nmf: Any, boot: conftest.BootServers,
                            old_sdk: openstack.connection.Connection) -> None:
    servers = boot("host2", count=3, metadata=cli.server_metadata(duration=1))
    try:
        ran = nmf("host-evacuate-live", "host2", "--format", "json")

        assert ran.code == 0, ran.err
        assert [r["status"] for r in ran.results] == ["migrated"] * 3
        for server in servers:
            after = old_sdk.compute.get_server(server["id"])
            assert after.compute_host in {"host1", "host3"}
            assert after.status == "ACTIVE"
        assert not list(old_sdk.compute.servers(all_projects=True,
                                                host="host2"))
        (service,) = old_sdk.compute.services(binary="nova-compute",
                                              host="host2")
        assert service.status == "disabled"
        assert service.disabled_reason.startswith(
            "nova-migrate-flows: evacuated by host-evacuate-live")
        (host,) = ran.json["hosts"]
        assert host["empty"] is True and host["service"] == "disabled"
    finally:
        for service in old_sdk.compute.services(binary="nova-compute"):
            if service.status != "enabled":
                old_sdk.compute.enable_service(service)


def services_of(sdk: openstack.connection.Connection) -> dict[str, Any]:
    return {s.host: s for s in sdk.compute.services(binary="nova-compute")}


def restore_services(sdk: openstack.connection.Connection) -> None:
    for service in sdk.compute.services(binary="nova-compute"):
        if service.is_forced_down:
            sdk.compute.update_service_forced_down(service, forced=False)
        if service.status != "enabled":
            sdk.compute.enable_service(service)


def test_host_evacuate_force_down(nmf: Any, boot: conftest.BootServers,
                                  old_sdk: openstack.connection.Connection,
                                  old_nova_sandbox: control.SandboxInfo
                                  ) -> None:
    """The report: on Zed this forced the host down, then failed every
    server with HTTP 406 (evacuate pinned at 2.95)."""
    running = boot("host3", count=2)
    stopped = boot("host3", stopped=True)
    try:
        ran = nmf("host-evacuate", "host3", "--force-down", "--format",
                  "json")

        assert ran.code == 0, ran.err
        assert [r["status"] for r in ran.results] == ["migrated"] * 3
        for server in running + stopped:
            after = old_sdk.compute.get_server(server["id"])
            assert after.compute_host in {"host1", "host2"}
            assert after.status == ("ACTIVE" if server in running
                                    else "SHUTOFF")
            (evacuation,) = old_sdk.compute.migrations(
                instance_uuid=server["id"])
            assert evacuation.migration_type == "evacuation"
        for server in running:
            # Below 2.95 Nova keeps the server running: nothing to start.
            actions = [a.action for a in
                       old_sdk.compute.server_actions(server["id"])]
            assert "start" not in actions
        host3 = services_of(old_sdk)["host3"]
        assert (host3.status, host3.is_forced_down) == ("disabled", True)
    finally:
        # Nova forces a host up again only once its compute service came
        # back and cleaned up: the evacuations then end "completed".
        client = control.SandboxClient(old_nova_sandbox.state_dir)
        client.stop_compute("host3")
        client.start_compute("host3")
        cli.wait_until(lambda: not [
            m for m in old_sdk.compute.migrations(
                migration_type="evacuation", source_compute="host3")
            if m.status == "done"], timeout=60)
        restore_services(old_sdk)


def test_host_servers_migrate(nmf: Any, boot: conftest.BootServers,
                              old_sdk: openstack.connection.Connection
                              ) -> None:
    servers = boot("host1", count=2) + boot("host1", stopped=True)
    try:
        ran = nmf("host-servers-migrate", "host1", "--format", "json")

        assert ran.code == 0, ran.err
        assert [r["status"] for r in ran.results] == ["migrated"] * 3
        for server, status in zip(servers, ("ACTIVE", "ACTIVE", "SHUTOFF"),
                                  strict=True):
            after = old_sdk.compute.get_server(server["id"])
            assert (after.compute_host != "host1", after.status) == (
                True, status)
            (migration,) = old_sdk.compute.migrations(
                instance_uuid=server["id"])
            assert (migration.migration_type, migration.status) == (
                "migration", "confirmed")
    finally:
        restore_services(old_sdk)
