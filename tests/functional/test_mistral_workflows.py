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
"""The guide's workflows, as written, on a real Mistral (23.0.0; API,
engine and executor in one process, ``NMF_TEST_MISTRAL_URL``) against the
sandbox's Nova. The actions run detached, in processes of Mistral's
virtualenv, or as jobs for conductors on a Redis jobboard
(``NMF_TEST_REDIS_URL``), and report to Mistral's API."""

import pathlib
import signal
import subprocess
import sys
import urllib.parse
from typing import Any

import pytest

from nova_migrate_flows.engine import persistence, records
from nova_migrate_flows.mistral import operation
from nova_migrate_flows.sandbox import constants
from tests import external
from tests.functional import mistral_api
from tests.functional.operations import cli

pytestmark = [pytest.mark.functional, pytest.mark.mistral,
              pytest.mark.usefixtures("restore_cloud")]

GUIDE = pathlib.Path(__file__).parents[2] / "doc/source/guides/mistral"
#: Longer than Mistral's 60 s RPC timeout, which a synchronous action
#: cannot outlast.
LONG_MIGRATION_S = 65
#: Seconds a dead conductor's claim on its job lasts.
CLAIM_EXPIRY = 5


@pytest.fixture(scope="module")
def mistral() -> mistral_api.Mistral:
    client = mistral_api.Mistral(external.address("mistral"))
    client.define((GUIDE / "drain_host.yaml").read_text())
    return client


@pytest.fixture
def config_files(sandbox: Any, tmp_path: pathlib.Path) -> list[str]:
    """The sandbox's configuration and this test's, which tells the
    actions where Mistral is."""
    return [sandbox.config_file, cli.write_config(tmp_path, (
        f"[mistral]\nendpoint_override = {external.address('mistral')}\n"
        "poll_interval = 0.5\nreport_timeout = 30\n"))]


def host_of(sdk: Any, server: dict[str, Any]) -> tuple[str, str]:
    found = sdk.compute.get_server(server["id"])
    return found.compute_host, found.status


def all_migrated_off_host1(sdk: Any, execution: dict[str, Any],
                           servers: list[dict[str, Any]]
                           ) -> dict[str, dict[str, Any]]:
    """Check that the execution's output reports each server migrated off
    host1, where Nova has it ACTIVE; each server's result."""
    results = {r["server"]: r for r in mistral_api.output(execution)[
        "results"]}
    assert sorted(results) == sorted(s["id"] for s in servers)
    for server in servers:
        host, status = host_of(sdk, server)
        assert results[server["id"]]["status"] == "migrated"
        assert results[server["id"]]["destination"] == host != "host1"
        assert status == "ACTIVE"
    return results


def test_a_good_drain_longer_than_a_minute_ends_success(
        mistral, config_files, boot_servers, sdk):
    # One server: the sandbox's computes live-migrate one at a time.
    (long_one,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=LONG_MIGRATION_S))
    (short_one,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=1))
    servers = [long_one, short_one]

    execution_id = mistral.start("drain_host", host="host1",
                                 config_file=config_files)
    execution = mistral.wait_for_execution(execution_id, timeout=300)

    assert execution["state"] == "SUCCESS", execution
    results = all_migrated_off_host1(sdk, execution, servers)
    assert results[long_one["id"]]["duration_s"] >= LONG_MIGRATION_S


def test_a_failed_drain_ends_error_with_every_servers_result(
        mistral, config_files, boot_servers, sdk):
    (good,) = boot_servers("host2", metadata=cli.server_metadata(
        duration=1))
    (bad,) = boot_servers("host2", metadata=cli.server_metadata(
        duration=1, result=constants.RESULT_FAIL))

    execution_id = mistral.start("drain_host", host="host2",
                                 config_file=config_files)
    execution = mistral.wait_for_execution(execution_id)

    assert execution["state"] == "ERROR", execution
    out = mistral_api.output(execution)
    statuses = {r["server"]: r["status"] for r in out["results"]}
    assert statuses == {good["id"]: "migrated", bad["id"]: "failed"}
    assert [r["server"] for r in out["failed"]] == [bad["id"]]
    assert out["error"] == "1 of 2 server(s) failed; not emptied: host2"
    assert host_of(sdk, bad) == ("host2", "ACTIVE")
    assert host_of(sdk, good)[0] != "host2"


def _cancel(mistral: mistral_api.Mistral, execution_id: str) -> None:
    mistral.cancel(execution_id)


@pytest.mark.parametrize(("timeout", "stop", "state"), [
    (10, None, "ERROR"),
    (3600, _cancel, "CANCELLED"),
], ids=["task-timeout", "execution-cancel"])
def test_mistral_stops_a_drain_of_hanging_migrations(
        mistral, config_files, boot_servers, sdk, timeout, stop, state):
    servers = boot_servers("host3", count=2, metadata=cli.server_metadata(
        result=constants.RESULT_HANG))

    execution_id = mistral.start("drain_host", host="host3",
                                 config_file=config_files, timeout=timeout)
    # Stopped with live migrations in flight (the timeout leaves time).
    cli.wait_until(lambda: any(
        m.status == "running" for server in servers
        for m in cli.live_migrations(sdk, server["id"])), timeout=30)
    if stop is not None:
        stop(mistral, execution_id)
    execution = mistral.wait_for_execution(execution_id)
    assert execution["state"] == state, execution
    (task,) = mistral.tasks(execution_id)
    if stop is None:
        assert "timed out" in task["state_info"]
    (action,) = mistral.action_executions(task["id"])
    # The detached process stops the drain, then reports what it did.
    action = mistral.wait(
        lambda: mistral.action_execution(action["id"]), timeout=60)

    assert action["state"] == "ERROR"
    result = mistral_api.output(action)["result"]
    assert result["interrupted"] is True
    assert result["error"] == "the run was interrupted"
    assert {r["status"] for r in result["results"]} == {"skipped"}
    for row in result["results"]:
        assert "interrupted by Mistral" in row["reason"]
    for server in servers:
        assert host_of(sdk, server) == ("host3", "ACTIVE")
        assert {m.status for m in cli.live_migrations(
            sdk, server["id"])} <= {"cancelled", "error", "failed"}
    (service,) = sdk.compute.services(host="host3", binary="nova-compute")
    assert service.status == "enabled"


def jobboard_config(tmp_path: pathlib.Path) -> str:
    """Asynchronous actions go to a Redis jobboard of this test's own."""
    redis = urllib.parse.urlparse(external.address("redis"))
    return (
        "[mistral]\ndetach_to = jobboard\n"
        f"[jobboard]\nredis_host = {redis.hostname}\n"
        f"redis_port = {redis.port or 6379}\n"
        f"redis_db = {(redis.path or '/0').strip('/') or 0}\n"
        f"name = nmf-mistral-{tmp_path.name}\n"
        f"claim_expiry = {CLAIM_EXPIRY}\n[conductor]\nwait_timeout = 0.2\n")


def conductor(config_files: list[str], name: str,
              log: pathlib.Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "nova_migrate_flows.cli",
             *(arg for path in config_files
               for arg in ("--config-file", path)),
             "conductor", "--name", name],
            stdout=subprocess.DEVNULL, stderr=stderr)


@pytest.mark.redis
def test_a_conductor_that_dies_mid_drain_leaves_mistral_the_real_result(
        mistral, config_files, boot_servers, sdk, tmp_path):
    """The drain is one job: conductor-a runs it and is SIGKILLed with a
    live migration in flight, conductor-b takes the job over, resumes the
    same run, and reports it to Mistral."""
    jobboard = tmp_path / "jobboard.conf"
    jobboard.write_text(jobboard_config(tmp_path))
    config_files.append(str(jobboard))
    servers = boot_servers("host1", count=3, metadata=cli.server_metadata(
        duration=4))
    first = conductor(config_files, "conductor-a", tmp_path / "a.log")
    second = None
    try:
        execution_id = mistral.start("drain_host", host="host1",
                                     config_file=config_files)
        cli.wait_until(lambda: any(
            m.status == "running" for server in servers
            for m in cli.live_migrations(sdk, server["id"])), timeout=30)
        second = conductor(config_files, "conductor-b", tmp_path / "b.log")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        execution = mistral.wait_for_execution(execution_id, timeout=120)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)

    assert execution["state"] == "SUCCESS", (
        execution, (tmp_path / "b.log").read_text()[-3000:])
    all_migrated_off_host1(sdk, execution, servers)
    for server in servers:
        # Nothing was moved twice.
        assert [m.status for m in cli.live_migrations(
            sdk, server["id"])] == ["completed"]
    # The run conductor-a started is the one conductor-b resumed.
    (task,) = mistral.tasks(execution_id)
    (action,) = mistral.action_executions(task["id"])
    run_id = mistral_api.output(mistral.action_execution(action["id"]))[
        "result"]["run_id"]
    backend = persistence.backend_from_conf(
        operation.load_conf(config_files, None))
    try:
        run = records.Records(backend).get(run_id)
    finally:
        backend.close()
    assert run.meta["owner"]["pid"] == second.pid
    assert "resumed_at" in run.meta
    assert run.meta["state"] == "finished"
