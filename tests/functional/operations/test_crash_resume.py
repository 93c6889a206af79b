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
"""Crashes: the orchestrator is killed with SIGKILL at several points of a
run, then ``resume`` finishes it. Nova's records must show exactly one
migration per server, every server verified on a new host, and the
compute service as the rules say. On SQLite and on PostgreSQL."""

import signal

import pytest

from tests.functional.operations import cli

pytestmark = pytest.mark.functional

SLOW_VERIFY = "nmf_example:verify_delay"


def kill_when(process, probe, timeout=120.0):
    """SIGKILL ``process`` as soon as ``probe()`` holds."""
    try:
        cli.wait_until(lambda: probe() or process.poll() is not None,
                       timeout=timeout, interval=0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL, (
        "the run ended before it could be killed: "
        + (process.stderr.read() if process.stderr else ""))


def killed_run(nmf, config, operation):
    """The id of the run the killed process left behind."""
    listed = nmf.with_config(config, "flows", "list", "--format", "json")
    runs = [r for r in listed.json["runs"]
            if r["state"] == "running" and r["operation"] == operation]
    assert runs, listed.out
    return max(runs, key=lambda r: r["started_at"] or "")["run_id"]


def migrations_of(sdk, server_id, kind):
    return [m for m in sdk.compute.migrations(instance_uuid=server_id)
            if m.migration_type == kind]


def assert_moved_once(sdk, servers, source, kind, final_status):
    for server in servers:
        after = sdk.compute.get_server(server["id"])
        assert after.compute_host != source, server
        records = migrations_of(sdk, server["id"], kind)
        assert [m.status for m in records] == [final_status], records


def service(sdk, host):
    return next(s for s in sdk.compute.services(binary="nova-compute")
                if s.host == host)


@pytest.mark.parametrize("point", ["service-disabled", "migration-running"])
def test_resume_after_a_kill_during_a_live_evacuation(
        nmf, boot_servers, sdk, sandbox, persistence_config, point):
    servers = boot_servers("host1", count=4,
                           metadata=cli.server_metadata(duration=2))
    config = nmf.write(persistence_config)
    process = cli.spawn_cli(sandbox.config_file, config,
                            "host-evacuate-live", "host1")

    if point == "service-disabled":
        kill_when(process,
                  lambda: service(sdk, "host1").status == "disabled")
    else:
        kill_when(process, lambda: any(
            m.status == "running" for s in servers
            for m in migrations_of(sdk, s["id"], "live-migration")))
    run_id = killed_run(nmf, config, "host-evacuate-live")

    ran = nmf.with_config(config, "resume", run_id, "--format", "json")

    assert ran.code == 0, ran.err
    assert [r["status"] for r in ran.results] == ["migrated"] * 4
    assert_moved_once(sdk, servers, "host1", "live-migration", "completed")
    host1 = service(sdk, "host1")
    assert host1.status == "disabled"
    assert host1.disabled_reason.startswith(
        "nova-migrate-flows: evacuated by host-evacuate-live")
    assert run_id in host1.disabled_reason
    assert ran.json["hosts"][0]["disabled_by_us"] is True


def test_resume_after_a_kill_before_verification(
        nmf, boot_servers, sdk, sandbox, example_plugin, persistence_config):
    servers = boot_servers("host1", count=2, metadata=dict(
        cli.server_metadata(duration=1), **{SLOW_VERIFY: "4"}))
    config = nmf.write(persistence_config + (
        "[migration]\nverify_tasks = migration-completed,host-changed,"
        "example-slow-verify,server-state-restored\n"))
    process = cli.spawn_cli(sandbox.config_file, config,
                            "host-evacuate-live", "host1")

    kill_when(process, lambda: any(
        m.status == "completed" for s in servers
        for m in migrations_of(sdk, s["id"], "live-migration")))
    run_id = killed_run(nmf, config, "host-evacuate-live")

    ran = nmf.with_config(config, "resume", run_id, "--format", "json")

    assert ran.code == 0, ran.err
    assert [r["status"] for r in ran.results] == ["migrated"] * 2
    assert_moved_once(sdk, servers, "host1", "live-migration", "completed")


def test_resume_after_a_kill_during_a_cold_migration(
        nmf, boot_servers, sdk, sandbox, example_plugin, persistence_config):
    running = boot_servers("host2", metadata={SLOW_VERIFY: "4"})
    stopped = boot_servers("host2", stopped=True,
                           metadata={SLOW_VERIFY: "4"})
    config = nmf.write(persistence_config + (
        "[migration]\nverify_tasks = migration-completed,host-changed,"
        "example-slow-verify\n"))
    process = cli.spawn_cli(sandbox.config_file, config,
                            "host-servers-migrate", "host2")

    kill_when(process, lambda: any(
        sdk.compute.get_server(s["id"]).status == "VERIFY_RESIZE"
        for s in running + stopped))
    run_id = killed_run(nmf, config, "host-servers-migrate")

    ran = nmf.with_config(config, "resume", run_id, "--format", "json")

    assert ran.code == 0, ran.err
    assert [r["status"] for r in ran.results] == ["migrated"] * 2
    assert_moved_once(sdk, running + stopped, "host2", "migration",
                      "confirmed")
    assert sdk.compute.get_server(running[0]["id"]).status == "ACTIVE"
    assert sdk.compute.get_server(stopped[0]["id"]).status == "SHUTOFF"
