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
"""Distributed mode against the sandbox: a conductor dies while it runs a
host evacuation; another takes the job over and finishes it.

On a Redis jobboard (``NMF_TEST_REDIS_URL``) and a ZooKeeper one
(``NMF_TEST_ZOOKEEPER_HOSTS``); on SQLite and PostgreSQL.
"""

import signal
import subprocess
import sys
import time
import urllib.parse

import pytest

from tests import external
from tests.functional.operations import cli

pytestmark = [pytest.mark.functional]

CLAIM_EXPIRY = 5


@pytest.fixture(params=[
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("zookeeper", marks=pytest.mark.zookeeper),
])
def board_config(request, tmp_path):
    name = f"nmf-failover-{tmp_path.name}"
    common = (f"name = {name}\nclaim_expiry = {CLAIM_EXPIRY}\n"
              "[conductor]\nwait_timeout = 0.2\n")
    if request.param == "zookeeper":
        hosts = external.address("zookeeper")
        return (f"[jobboard]\nbackend = zookeeper\n"
                f"zookeeper_hosts = {hosts}\n" + common)
    parsed = urllib.parse.urlparse(external.address("redis"))
    return (
        f"[jobboard]\nredis_host = {parsed.hostname}\n"
        f"redis_port = {parsed.port or 6379}\n"
        f"redis_db = {(parsed.path or '/0').strip('/') or 0}\n" + common
    )


def conductor(sandbox, config, name):
    return subprocess.Popen(
        [sys.executable, "-m", "nova_migrate_flows.cli", "--config-file",
         sandbox.config_file, "--config-file", config, "conductor",
         "--name", name],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def owner(nmf, config):
    jobs = nmf.with_config(config, "jobs", "list", "--format", "json").json
    owners = [j["owner"] for j in jobs["jobs"] if j["state"] == "claimed"]
    return owners[0] if owners else None


# Each jobboard backend and each SQL persistence backend once: a conductor's
# takeover does not depend on which of them pairs with which.
@pytest.mark.parametrize("board_config,persistence_config", [
    pytest.param("redis", "postgresql",
                 marks=[pytest.mark.redis, pytest.mark.postgresql]),
    pytest.param("zookeeper", "sqlite", marks=pytest.mark.zookeeper),
], indirect=True)
def test_a_dead_conductor_s_evacuation_is_finished_by_another(
        nmf, boot_servers, sdk, sandbox, board_config, persistence_config):
    servers = boot_servers("host1", count=6,
                           metadata=cli.server_metadata(duration=2))
    config = nmf.write(board_config + persistence_config)
    first = conductor(sandbox, config, "conductor-a")
    second = None
    try:
        submitted = nmf.with_config(config, "submit", "host-evacuate-live",
                                    "host1", "--format", "json")
        assert submitted.code == 0, submitted.err
        (job,) = submitted.json["jobs"]
        cli.wait_until(lambda: owner(nmf, config) == "conductor-a")
        cli.wait_until(lambda: any(
            m.status == "running" for s in servers
            for m in cli.live_migrations(sdk, s["id"])))
        second = conductor(sandbox, config, "conductor-b")

        first.send_signal(signal.SIGKILL)
        first.wait(30)
        killed = time.monotonic()
        cli.wait_until(lambda: owner(nmf, config) == "conductor-b",
                       timeout=CLAIM_EXPIRY * 6)
        took_over = time.monotonic() - killed
        # Straight to the terminal: pytest captures stdout for the CLI.
        sys.__stderr__.write(
            f"\nfailover: conductor-b claimed the job {took_over:.1f} s "
            f"after conductor-a was killed (claim expiry {CLAIM_EXPIRY} s)\n")
        cli.wait_until(lambda: not any(
            j["job_id"] == job["job_id"] and j["state"] != "finished"
            for j in nmf.with_config(config, "jobs", "list", "--format",
                                     "json").json["jobs"]), timeout=180)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)

    assert took_over <= CLAIM_EXPIRY + 5
    for server in servers:
        after = sdk.compute.get_server(server["id"])
        assert after.compute_host != "host1"
        records = cli.live_migrations(sdk, server["id"])
        assert [m.status for m in records] == ["completed"], records
    shown = nmf.with_config(config, "flows", "show",
                            submitted.json["run_id"], "--format", "json")
    assert shown.json["state"] == "finished"
    assert {s["status"] for s in shown.json["servers"]} == {"migrated"}
    host1 = next(s for s in sdk.compute.services(binary="nova-compute")
                 if s.host == "host1")
    assert host1.status == "disabled"
    assert "evacuated" in host1.disabled_reason


@pytest.mark.parametrize("board_config", [
    pytest.param("redis", marks=pytest.mark.redis)], indirect=True)
def test_a_dead_conductor_s_roll_is_resumed_by_another(
        nmf, boot_servers, sdk, sandbox, board_config, tmp_path):
    homes = {host: boot_servers(host, metadata=cli.server_metadata(
        duration=1))[0] for host in ("host1", "host2")}
    config = nmf.write(board_config)
    log, flag = tmp_path / "hooks.log", tmp_path / "hung-once"
    # host2's hook hangs the first time: its conductor is killed there.
    hook = (f'echo "$NMF_HOST" >> {log}; if [ "$NMF_HOST" = host2 ] && '
            f"[ ! -e {flag} ]; then touch {flag}; sleep 120; fi")
    first = conductor(sandbox, config, "conductor-a")
    second = None
    try:
        submitted = nmf.with_config(
            config, "submit", "host-maintenance", "roll", "host1", "host2",
            "--batch", "1", "--hook", hook, "--move-back", "--format",
            "json")
        assert submitted.code == 0, submitted.err
        (job,) = submitted.json["jobs"]
        assert job["name"] == "host-maintenance-roll"
        cli.wait_until(flag.exists, timeout=240)
        second = conductor(sandbox, config, "conductor-b")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        cli.wait_until(lambda: owner(nmf, config) == "conductor-b",
                       timeout=CLAIM_EXPIRY * 6)
        cli.wait_until(lambda: nmf.with_config(
            config, "flows", "show", submitted.json["run_id"], "--format",
            "json").json["state"] in ("finished", "failed"), timeout=240)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)

    shown = nmf.with_config(config, "flows", "show",
                            submitted.json["run_id"], "--format", "json")
    assert shown.json["state"] == "finished"
    # Nothing was repeated: one move away and one back per server, and
    # only the hook the crash interrupted ran again.
    for host, server in homes.items():
        assert sdk.compute.get_server(server["id"]).compute_host == host
        moves = list(sdk.compute.migrations(instance_uuid=server["id"]))
        assert len(moves) == 2, moves
    assert log.read_text().split() == ["host1", "host2", "host2"]
    for service in sdk.compute.services(binary="nova-compute"):
        assert service.status == "enabled", service


@pytest.mark.parametrize("board_config", [
    pytest.param("redis", marks=pytest.mark.redis)], indirect=True)
def test_conductors_run_maintenance_enter_and_exit(
        nmf, boot_servers, sdk, sandbox, board_config):
    (server,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=1))
    config = nmf.write(board_config)
    worker = conductor(sandbox, config, "conductor-a")

    def finished(run_id):
        return nmf.with_config(config, "flows", "show", run_id, "--format",
                               "json").json["state"] == "finished"

    try:
        entered = nmf.with_config(config, "submit", "host-maintenance",
                                  "enter", "host1", "--reason", "psu",
                                  "--format", "json")
        assert entered.code == 0, entered.err
        cli.wait_until(lambda: finished(entered.json["run_id"]), timeout=120)
        away = sdk.compute.get_server(server["id"]).compute_host
        host1 = next(s for s in sdk.compute.services(binary="nova-compute")
                     if s.host == "host1")
        assert away != "host1"
        assert host1.disabled_reason.startswith(
            "nova-migrate-flows: maintenance since ")
        assert host1.disabled_reason.endswith(
            f"(run {entered.json['run_id']}): psu")

        left = nmf.with_config(config, "submit", "host-maintenance", "exit",
                               "host1", "--move-back", "--format", "json")
        assert left.code == 0, left.err
        cli.wait_until(lambda: finished(left.json["run_id"]), timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)

    assert sdk.compute.get_server(server["id"]).compute_host == "host1"
    assert [s.status for s in sdk.compute.services(binary="nova-compute")
            if s.host == "host1"] == ["enabled"]
