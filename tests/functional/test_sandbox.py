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
"""The sandbox cloud, seen the way the project's tools see it: over HTTP,
through openstacksdk and the generated clouds.yaml.

Token expiry is tested on the shared sandbox by shortening the token
lifetime at run time (``SandboxClient.set_token_ttl``) and restoring it:
only tokens issued meanwhile are short-lived, so no other test notices,
and no second sandbox has to start.
"""

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import openstack
import pytest
import requests

from nova_migrate_flows import exceptions
from nova_migrate_flows.sandbox import __main__ as sandbox_main
from nova_migrate_flows.sandbox import constants, control
from tests.functional import conftest

pytestmark = pytest.mark.functional

T = TypeVar("T")
MIB = 1024 * 1024


def wait_until(predicate: Callable[[], T | None], timeout: float,
               what: str, interval: float = 0.2) -> T:
    """Poll ``predicate`` until it answers something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for "
                                 f"{what}")
        time.sleep(interval)


#: Statuses a migration no longer changes from (until confirmed).
FINAL_STATUSES = ("completed", "failed", "cancelled", "error", "done")


def finished(sdk: openstack.connection.Connection, server_id: str,
             timeout: float = 30.0) -> tuple[Any, Any]:
    """The server and its migration, once the migration has ended.

    The migration ends last: a server can look settled (no task) while
    Nova still finishes the migration.
    """
    def check() -> tuple[Any, Any] | None:
        migrations = list(sdk.compute.migrations(instance_uuid=server_id))
        if not migrations:
            return None
        migration = max(migrations, key=lambda item: item.id)
        if migration.status not in FINAL_STATUSES:
            return None
        server = sdk.compute.get_server(server_id)
        return (server, migration) if server.task_state is None else None
    server, migration = wait_until(check, timeout,
                                   f"the migration of {server_id}")
    return server, migration


def last_migration(sdk: openstack.connection.Connection,
                   server_id: str) -> Any:
    """The server's newest migration (finished ones included)."""
    migrations = list(sdk.compute.migrations(instance_uuid=server_id))
    assert migrations, f"server {server_id} has no migration"
    return max(migrations, key=lambda migration: migration.id)


def running_migration(sdk: openstack.connection.Connection,
                      server_id: str, timeout: float = 15.0) -> Any:
    """The server's live migration, once it is running."""
    def check() -> Any:
        return next((migration for migration
                     in sdk.compute.server_migrations(server_id)
                     if migration.status == "running"), None)
    return wait_until(check, timeout, f"a running migration of {server_id}")


def live_migrate(sdk: openstack.connection.Connection,
                 server_id: str) -> None:
    """Live-migrate, letting the scheduler choose (block_migration auto)."""
    sdk.compute.live_migrate_server(server_id, host=None,
                                    block_migration=None)


def service_state(sdk: openstack.connection.Connection, host: str) -> str:
    """``up`` or ``down``: the nova-compute service of ``host``."""
    services = list(sdk.compute.services(binary="nova-compute", host=host))
    assert len(services) == 1
    return str(services[0].state)


def test_every_generated_cloud_connects(
        sandbox: control.SandboxInfo) -> None:
    for cloud in (constants.CLOUD_ADMIN, constants.CLOUD_DEMO,
                  constants.CLOUD_APPCRED):
        connection = conftest.connect(sandbox, cloud)
        flavors = {flavor.name for flavor in connection.compute.flavors()}
        assert {"m1.tiny", "m1.small", "m1.medium", "m1.large",
                "m1.ephemeral"} <= flavors, cloud
    mode = stat.S_IMODE(os.stat(sandbox.clouds_yaml).st_mode)
    assert mode == 0o600


def test_generated_config_file(sandbox: control.SandboxInfo) -> None:
    with open(sandbox.config_file, encoding="utf-8") as stream:
        text = stream.read()
    state_dir = sandbox.state_dir
    assert text == (
        f"[DEFAULT]\nstate_dir = {state_dir}/state\n\n"
        f"[nova]\ncloud = sandbox\nclouds_yaml = {state_dir}/clouds.yaml\n")


def test_hypervisors_and_services_are_up(
        sdk: openstack.connection.Connection) -> None:
    hypervisors = {hypervisor.name: hypervisor
                   for hypervisor in sdk.compute.hypervisors(details=True)}
    assert sorted(hypervisors) == ["host1", "host2", "host3", "host4"]
    assert {h.state for h in hypervisors.values()} == {"up"}
    services = list(sdk.compute.services())
    computes = [s for s in services if s.binary == "nova-compute"]
    assert sorted(s.host for s in computes) == [
        "host1", "host2", "host3", "host4"]
    assert {(s.state, s.status) for s in computes} == {("up", "enabled")}
    assert {"nova-conductor", "nova-scheduler"} <= {
        s.binary for s in services}


def test_boot_on_chosen_host(sdk: openstack.connection.Connection,
                             boot_servers: conftest.BootServers) -> None:
    active = boot_servers("host3", 2, config_drive=True)
    assert [s["host"] for s in active] == ["host3", "host3"]
    assert {s["status"] for s in active} == {"ACTIVE"}
    server = sdk.compute.get_server(active[0]["id"])
    assert server.compute_host == "host3"
    assert server.has_config_drive in (True, "True")

    stopped = boot_servers("host2", flavor="m1.ephemeral", stopped=True)
    assert stopped[0]["status"] == "SHUTOFF"
    assert stopped[0]["host"] == "host2"
    assert sdk.compute.get_server(stopped[0]["id"]).flavor.ephemeral == 10

    (from_volume,) = boot_servers("host1", boot_from_volume=True)
    server = sdk.compute.get_server(from_volume["id"])
    assert server.compute_host == "host1"
    assert len(server.attached_volumes) == 1
    assert not server.image


def test_live_migration_moves_server_and_reports_progress(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    # Long enough to be sampled on a loaded machine; forced to end then.
    (server,) = boot_servers("host1", metadata={
        constants.META_LIVE_MIGRATION_DURATION: "60"})
    live_migrate(sdk, server["id"])
    migration = running_migration(sdk, server["id"])
    detail = sdk.compute.get_server_migration(migration.id, server["id"])
    assert detail.memory_total_bytes == 512 * MIB
    processed: list[int] = []

    def three_samples() -> bool:
        for current in sdk.compute.server_migrations(server["id"]):
            if current.memory_processed_bytes:
                processed.append(current.memory_processed_bytes)
        return len(set(processed)) >= 3

    wait_until(three_samples, 60, "three progress samples")
    assert processed == sorted(processed)
    sdk.compute.force_complete_server_migration(migration, server["id"])
    moved, migration = finished(sdk, server["id"])
    assert migration.status == "completed"
    assert moved.status == "ACTIVE"
    assert moved.compute_host != "host1"
    assert migration.source_compute == "host1"
    assert migration.dest_compute == moved.compute_host


def test_block_migration_reports_disk_progress(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host2", flavor="m1.ephemeral", metadata={
        constants.META_LIVE_MIGRATION_DURATION: "1.5"})
    sdk.compute.live_migrate_server(server["id"], host=None,
                                    block_migration=True)
    migration = running_migration(sdk, server["id"])

    def disk_progress() -> Any:
        current = sdk.compute.get_server_migration(migration.id, server["id"])
        return current if current.disk_processed_bytes else None

    detail = wait_until(disk_progress, 5, "disk progress")
    # Root and ephemeral disks of m1.ephemeral: 10 + 10 GiB.
    assert detail.disk_total_bytes == 20 * 1024 * MIB
    assert 1 <= detail.disk_processed_bytes < detail.disk_total_bytes
    moved, finished_migration = finished(sdk, server["id"])
    assert finished_migration.status == "completed"
    assert moved.compute_host != "host2"


def test_each_host_runs_its_own_live_migration(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    metadata = {constants.META_LIVE_MIGRATION_DURATION: "60"}
    servers = (boot_servers("host1", metadata=metadata)
               + boot_servers("host2", metadata=metadata))
    for server in servers:
        live_migrate(sdk, server["id"])

    # One process-wide executor would queue the second behind the first.
    def both_running() -> list[Any] | None:
        running = [m for server in servers
                   for m in sdk.compute.server_migrations(server["id"])
                   if m.status == "running"]
        return running if len(running) == 2 else None

    for migration in wait_until(both_running, 60, "two running at once"):
        sdk.compute.force_complete_server_migration(
            migration, migration.server_id)
    migrations = [finished(sdk, server["id"])[1] for server in servers]
    assert [m.status for m in migrations] == ["completed", "completed"]


def test_one_host_runs_one_live_migration_at_a_time(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    duration = 1.5
    servers = boot_servers("host3", 2, metadata={
        constants.META_LIVE_MIGRATION_DURATION: str(duration)})
    started = time.monotonic()
    for server in servers:
        live_migrate(sdk, server["id"])
    seen: set[tuple[str, ...]] = set()
    while any(sdk.compute.get_server(s["id"]).status == "MIGRATING"
              for s in servers):
        statuses = tuple(sorted(
            migration.status for server in servers
            for migration in sdk.compute.server_migrations(server["id"])))
        seen.add(statuses)
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    assert ("queued", "running") in seen, seen
    assert ("running", "running") not in seen, seen
    assert elapsed >= 2 * duration


def test_failed_live_migration_rolls_back_with_a_reason(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host2", metadata={
        constants.META_LIVE_MIGRATION_DURATION: "0.5",
        constants.META_LIVE_MIGRATION_RESULT: constants.RESULT_FAIL})
    live_migrate(sdk, server["id"])
    after, migration = finished(sdk, server["id"])
    assert migration.status == "failed"
    assert after.status == "ACTIVE"
    assert after.compute_host == "host2"

    actions = sdk.compute.get(f"/servers/{server['id']}/os-instance-actions",
                              microversion="2.84").json()["instanceActions"]
    (action,) = [a for a in actions if a["action"] == "live-migration"]
    assert action["message"] == "Error"
    detail = sdk.compute.get(
        f"/servers/{server['id']}/os-instance-actions/{action['request_id']}",
        microversion="2.84").json()["instanceAction"]
    errors = [event for event in detail["events"]
              if event["result"] == "Error"]
    assert [e["event"] for e in errors] == [
        constants.LIVE_MIGRATION_FAILURE_EVENT]
    assert "live migration to" in errors[0]["details"]
    assert constants.RESULT_FAIL in errors[0]["details"]


def test_hanging_live_migration_is_aborted(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host1", metadata={
        constants.META_LIVE_MIGRATION_DURATION: "0.5",
        constants.META_LIVE_MIGRATION_RESULT: constants.RESULT_HANG})
    live_migrate(sdk, server["id"])
    migration = running_migration(sdk, server["id"])
    time.sleep(1.0)
    first = sdk.compute.get_server_migration(migration.id, server["id"])
    time.sleep(0.6)
    second = sdk.compute.get_server_migration(migration.id, server["id"])
    assert first.memory_processed_bytes == second.memory_processed_bytes
    assert second.status == "running"

    sdk.compute.abort_server_migration(migration, server["id"])
    after, migration = finished(sdk, server["id"])
    assert migration.status == "cancelled"
    assert after.status == "ACTIVE"
    assert after.compute_host == "host1"


def test_hanging_live_migration_is_forced_to_complete(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host4", metadata={
        constants.META_LIVE_MIGRATION_DURATION: "0.5",
        constants.META_LIVE_MIGRATION_RESULT: constants.RESULT_HANG})
    live_migrate(sdk, server["id"])
    migration = running_migration(sdk, server["id"])
    time.sleep(1.0)
    assert sdk.compute.get_server(server["id"]).status == "MIGRATING"

    sdk.compute.force_complete_server_migration(migration, server["id"])
    after, migration = finished(sdk, server["id"])
    assert migration.status == "completed"
    assert after.status == "ACTIVE"
    assert after.compute_host != "host4"


def test_cold_migration_waits_then_confirms(
        sdk: openstack.connection.Connection,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host1", metadata={
        constants.META_COLD_MIGRATION_DELAY: "1.5"})
    started = time.monotonic()
    sdk.compute.migrate_server(server["id"])
    resized = sdk.compute.wait_for_server(
        sdk.compute.get_server(server["id"]), status="VERIFY_RESIZE",
        interval=0.2, wait=30)
    assert time.monotonic() - started >= 1.5
    assert resized.compute_host != "host1"
    sdk.compute.confirm_server_resize(server["id"])
    confirmed = sdk.compute.wait_for_server(resized, status="ACTIVE",
                                            interval=0.2, wait=30)
    assert confirmed.compute_host == resized.compute_host
    wait_until(lambda: last_migration(sdk, server["id"]).status == "confirmed",
               15, "the migration to be confirmed")


def test_resize_can_be_reverted(sdk: openstack.connection.Connection,
                                boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host2", metadata={
        constants.META_COLD_MIGRATION_DELAY: "0.2"})
    sdk.compute.resize_server(server["id"], "2")
    resized = sdk.compute.wait_for_server(
        sdk.compute.get_server(server["id"]), status="VERIFY_RESIZE",
        interval=0.2, wait=30)
    assert resized.flavor.name == "m1.small"  # flavor "2"
    sdk.compute.revert_server_resize(server["id"])
    reverted = sdk.compute.wait_for_server(resized, status="ACTIVE",
                                           interval=0.2, wait=30)
    assert reverted.compute_host == "host2"
    assert reverted.flavor.name == "m1.tiny"


def test_stopped_compute_goes_down_and_its_server_evacuates(
        sdk: openstack.connection.Connection,
        sandbox_client: control.SandboxClient,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host4")
    try:
        assert sandbox_client.stop_compute("host4") is True
        wait_until(lambda: service_state(sdk, "host4") == "down", 120,
                   "host4 to be down")
        assert sandbox_client.stop_compute("host4") is False

        sdk.compute.evacuate_server(server["id"])
        evacuated, evacuation = finished(sdk, server["id"])
        assert evacuation.migration_type == "evacuation"
        assert evacuation.status == "done"
        assert evacuated.compute_host != "host4"
        assert evacuated.status in ("ACTIVE", "SHUTOFF")
    finally:
        sandbox_client.start_compute("host4")
    wait_until(lambda: service_state(sdk, "host4") == "up", 15,
               "host4 to be up again")
    # Once back, nova-compute cleans up the guest that was evacuated.
    wait_until(lambda: last_migration(sdk, server["id"]).status == "completed",
               15, "the evacuation to complete")


def test_capacity_change_reaches_placement(
        sandbox: control.SandboxInfo, sdk: openstack.connection.Connection,
        sandbox_client: control.SandboxClient) -> None:
    provider = next(sdk.placement.resource_providers(name="host2"))

    def inventory() -> dict[str, int]:
        return {item.resource_class: item.total for item
                in sdk.placement.resource_provider_inventories(provider)}

    assert inventory() == {"VCPU": 16, "MEMORY_MB": 32768, "DISK_GB": 500}
    try:
        capacity = sandbox_client.set_host_capacity(
            "host2", vcpus=8, memory_mb=4096, disk_gb=100)
        assert capacity == {"vcpus": 8, "memory_mb": 4096, "local_gb": 100}
        assert inventory() == {"VCPU": 8, "MEMORY_MB": 4096, "DISK_GB": 100}
    finally:
        sandbox_client.set_host_capacity(
            "host2", vcpus=sandbox.options["host_vcpus"],
            memory_mb=sandbox.options["host_ram_mb"],
            disk_gb=sandbox.options["host_disk_gb"])
    with pytest.raises(exceptions.InvalidInput):
        sandbox_client.set_host_capacity("host9", vcpus=4)


def test_revoked_token_is_renewed_by_keystoneauth(
        sandbox: control.SandboxInfo,
        sandbox_client: control.SandboxClient) -> None:
    connection = conftest.connect(sandbox)
    list(connection.compute.flavors())
    old_token = connection.session.get_token()
    sandbox_client.reset_stats()
    assert sandbox_client.revoke_tokens() >= 1

    list(connection.compute.flavors())

    assert connection.session.get_token() != old_token
    counts = sandbox_client.request_stats()["services"]
    assert counts["identity"]["requests"] == {"POST /v3/auth/tokens": 1}
    # Refused requests are not counted: Nova never saw them.
    assert counts["compute"]["requests"] == {"GET /flavors/detail": 1}


def test_expired_token_is_refused_and_renewed(
        sandbox: control.SandboxInfo,
        sandbox_client: control.SandboxClient) -> None:
    compute_url = sandbox.endpoints["compute"]
    try:
        sandbox_client.set_token_ttl(2)
        connection = conftest.connect(sandbox)
        token = connection.session.get_token()
        assert token is not None
        assert requests.get(compute_url + "/flavors", timeout=10, headers={
            "X-Auth-Token": token}).status_code == 200
        time.sleep(2.2)
        refused = requests.get(compute_url + "/flavors", timeout=10,
                               headers={"X-Auth-Token": token})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == 401
        assert refused.headers["WWW-Authenticate"].startswith("Keystone uri=")
        # keystoneauth sees the token expire and fetches a new one.
        assert list(connection.compute.flavors())
        assert connection.session.get_token() != token
    finally:
        sandbox_client.set_token_ttl(constants.DEFAULT_TOKEN_TTL)


def test_requests_without_a_valid_token_are_refused(
        sandbox: control.SandboxInfo) -> None:
    compute_url = sandbox.endpoints["compute"]
    anonymous = requests.get(compute_url + "/servers", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["title"] == "Unauthorized"
    unknown = requests.get(compute_url + "/servers", timeout=10,
                           headers={"X-Auth-Token": "not-a-token",
                                    "X-Roles": "admin"})
    assert unknown.status_code == 401
    placement = requests.get(sandbox.endpoints["placement"]
                             + "/resource_providers", timeout=10,
                             headers={"X-Auth-Token": "admin"})
    assert placement.status_code == 401
    # Version discovery needs no token.
    assert requests.get(compute_url, timeout=10).status_code == 200
    assert requests.get(sandbox.endpoints["placement"],
                        timeout=10).status_code == 200


def test_member_user_is_forbidden_admin_apis(
        sandbox: control.SandboxInfo) -> None:
    demo = conftest.connect(sandbox, constants.CLOUD_DEMO)
    assert list(demo.compute.servers()) == []
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.migrations())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.services())
    appcred = conftest.connect(sandbox, constants.CLOUD_APPCRED)
    assert isinstance(list(appcred.compute.migrations()), list)


def test_request_stats_count_compute_requests(
        sdk: openstack.connection.Connection,
        sandbox_client: control.SandboxClient,
        boot_servers: conftest.BootServers) -> None:
    (server,) = boot_servers("host1")
    list(sdk.compute.flavors())
    sandbox_client.reset_stats()
    sdk.compute.get_server(server["id"])
    sdk.compute.get_server(server["id"])
    sdk.compute.stop_server(server["id"])
    stats = sandbox_client.request_stats()
    compute = stats["services"]["compute"]
    assert compute["requests"] == {
        "GET /servers/{id}": 2,
        "POST /servers/{id}/action os-stop": 1,
    }
    assert compute["total"] == 3
    reset = sandbox_client.reset_stats()
    assert reset["services"]["compute"]["total"] == 3
    assert sandbox_client.request_stats()["services"] == {}


def test_control_api_needs_the_secret(sandbox: control.SandboxInfo) -> None:
    control_url = sandbox.endpoints["control"]
    assert requests.get(control_url + "/health", timeout=10).json() == {
        "status": "ok"}
    assert requests.get(control_url + "/status",
                        timeout=10).status_code == 401
    assert requests.post(control_url + "/shutdown", timeout=10, headers={
        constants.CONTROL_SECRET_HEADER: "guess"}).status_code == 401


def test_driver_defaults_change_at_run_time(
        sandbox_client: control.SandboxClient) -> None:
    before = sandbox_client.defaults()
    try:
        changed = sandbox_client.set_defaults(
            live_migration_result=constants.RESULT_HANG,
            cold_migration_delay=0.5)
        assert changed["live_migration_result"] == constants.RESULT_HANG
        assert changed["cold_migration_delay"] == 0.5
        assert (changed["live_migration_duration"]
                == before["live_migration_duration"])
        with pytest.raises(exceptions.InvalidInput):
            sandbox_client.set_defaults(live_migration_result="explode")
    finally:
        sandbox_client.set_defaults(**before)
    assert sandbox_client.defaults() == before


def test_status_reports_hosts_and_servers(
        sandbox: control.SandboxInfo,
        boot_servers: conftest.BootServers) -> None:
    boot_servers("host2", 2)
    document = control.status(sandbox.state_dir)
    assert document["running"] is True
    assert document["pid"] == sandbox.pid
    assert sorted(document["hosts"]) == ["host1", "host2", "host3", "host4"]
    assert document["hosts"]["host2"]["servers"] >= 2
    assert document["hosts"]["host2"]["state"] == "up"
    assert document["images"] == [{"id": constants.IMAGE_ID,
                                   "name": constants.IMAGE_NAME}]


def test_status_shows_a_disabled_compute(
        sandbox: control.SandboxInfo,
        sdk: openstack.connection.Connection,
        capsys: pytest.CaptureFixture[str]) -> None:
    (service,) = sdk.compute.services(binary="nova-compute", host="host4")
    sdk.compute.disable_service(service, disabled_reason="status test")
    try:
        document = control.status(sandbox.state_dir)
        assert document["hosts"]["host4"]["status"] == "disabled"
        assert document["hosts"]["host4"]["state"] == "up"
        assert document["hosts"]["host3"]["status"] == "enabled"

        assert sandbox_main.main(
            ["status", "--state-dir", sandbox.state_dir]) == 0
        rows = {line.split()[0]: line.split()
                for line in capsys.readouterr().out.splitlines()
                if line.startswith("host")}
        assert rows["host4"][1:4] == ["up", "disabled", "yes"]
        assert rows["host3"][1:4] == ["up", "enabled", "yes"]
    finally:
        sdk.compute.enable_service(service)


def test_command_line(sandbox: control.SandboxInfo,
                      sdk: openstack.connection.Connection,
                      capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox_main.main(["status", "--state-dir", sandbox.state_dir,
                              "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True

    assert sandbox_main.main([
        "boot", "--state-dir", sandbox.state_dir, "--host", "host3",
        "--metadata", f"{constants.META_LIVE_MIGRATION_DURATION}=1",
        "--format", "json"]) == 0
    (server,) = json.loads(capsys.readouterr().out)
    try:
        assert server["host"] == "host3"
        assert sdk.compute.get_server(server["id"]).metadata == {
            constants.META_LIVE_MIGRATION_DURATION: "1"}
    finally:
        sdk.compute.delete_server(server["id"])

    assert sandbox_main.main(["boot", "--state-dir", sandbox.state_dir,
                              "--host", "host9"]) == 2
    assert "No compute host 'host9'" in capsys.readouterr().err


def test_project_command_line_has_the_sandbox_command(
        sandbox: control.SandboxInfo) -> None:
    code = ("import sys; from nova_migrate_flows.cli.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    result = subprocess.run(
        [sys.executable, "-c", code, "sandbox", "status", "--state-dir",
         sandbox.state_dir, "--format", "json"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pid"] == sandbox.pid


def test_start_refuses_a_second_sandbox_in_the_same_place(
        sandbox: control.SandboxInfo) -> None:
    with pytest.raises(exceptions.InvalidInput, match="already runs"):
        control.start(sandbox.state_dir)


def test_start_failure_shows_the_log(tmp_path: Any) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ImportError: no nova here' >&2\n"
                      "exit 3\n")
    broken.chmod(0o755)
    with pytest.raises(exceptions.SandboxError,
                       match="(?s)exited with 3.*no nova here"):
        control.start(tmp_path / "sandbox", computes=1, python=str(broken))
    assert control.status(tmp_path / "sandbox")["running"] is False


def test_start_refuses_a_missing_interpreter(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(exceptions.InvalidInput,
                       match="No Python interpreter at"):
        control.start(tmp_path / "sandbox", computes=1,
                      python=str(tmp_path / "no-such-python"))
    assert sandbox_main.main(
        ["start", "--state-dir", str(tmp_path / "sandbox"), "--python",
         "no-such-python3.10"]) == 2
    assert "No Python interpreter at 'no-such-python3.10'" in (
        capsys.readouterr().err)
    assert not (tmp_path / "sandbox" / "sandbox.log").exists()


def test_sandbox_reports_its_nova(sandbox: control.SandboxInfo) -> None:
    nova = sandbox.nova
    assert nova["concurrency"] == "threading"
    version = requests.get(sandbox.endpoints["compute"],
                           timeout=10).json()["version"]
    assert (nova["min_microversion"], nova["max_microversion"]) == (
        version["min_version"], version["version"])
    assert nova["release"].split(".")[0].isdigit()
    assert sandbox.python["executable"] == sys.executable
    assert control.status(sandbox.state_dir)["nova"] == nova


def test_stop_without_a_sandbox_does_nothing(tmp_path: Any) -> None:
    assert control.stop(tmp_path) is False
    assert control.stop(tmp_path) is False


def test_stale_sandbox_is_cleaned_up(tmp_path: Any) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    runtime = tmp_path / "sandbox.json"
    runtime.write_text(json.dumps({"pid": gone.pid}))
    (tmp_path / "nova").mkdir()
    assert control.status(tmp_path)["running"] is False
    with pytest.raises(exceptions.SandboxError, match="No sandbox runs"):
        control.SandboxClient(tmp_path)
    assert control.stop(tmp_path) is False
    assert not runtime.exists()
    assert not (tmp_path / "nova").exists()


def test_control_and_cli_import_without_nova() -> None:
    code = ("import sys, nova_migrate_flows.sandbox.control, "
            "nova_migrate_flows.sandbox.cli; "
            "print(sorted({'nova', 'eventlet'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], check=True,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]"
