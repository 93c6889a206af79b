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
"""Host maintenance against the sandbox's Nova: enter, exit --move-back,
status, and rolls with a hook that stops and starts nova-compute."""

import json
import pathlib
import shlex
import signal
import sys

import pytest

from tests.functional.operations import cli

pytestmark = pytest.mark.functional

MARKER = "nova-migrate-flows: maintenance since "


def services(sdk):
    return {s.host: s for s in sdk.compute.services(binary="nova-compute")}


def where(sdk, server_id):
    server = sdk.compute.get_server(server_id)
    return server.compute_host, server.status


def migrations_of(sdk, server_id):
    return sorted((m.migration_type, m.source_compute, m.dest_compute,
                   m.status)
                  for m in sdk.compute.migrations(instance_uuid=server_id))


def paused(sdk, boot_servers, host):
    (server,) = boot_servers(host, metadata=cli.server_metadata(duration=1))
    sdk.compute.pause_server(server["id"])
    cli.wait_until(lambda: where(sdk, server["id"])[1] == "PAUSED")
    return server


def test_enter_moves_every_server_and_marks_the_host(nmf, boot_servers,
                                                      sdk):
    running = boot_servers("host1", count=2,
                           metadata=cli.server_metadata(duration=1))
    (stopped,) = boot_servers("host1", stopped=True)
    pause = paused(sdk, boot_servers, "host1")

    ran = nmf("host-maintenance", "enter", "host1", "--reason",
              "kernel 6.1", "--format", "json")

    assert ran.code == 0, ran.err
    assert {r["status"] for r in ran.results} == {"migrated"}
    assert len(ran.results) == 4
    for server, status, action in (
            [(s, "ACTIVE", "live-migrate") for s in running]
            + [(stopped, "SHUTOFF", "cold-migrate"),
               (pause, "PAUSED", "live-migrate")]):
        host, now = where(sdk, server["id"])
        assert host != "host1" and now == status
        assert ran.result_of(server["id"])["action"] == action
    assert not list(sdk.compute.servers(all_projects=True, host="host1"))
    host1 = services(sdk)["host1"]
    assert host1.status == "disabled"
    assert host1.disabled_reason.startswith(MARKER)
    assert f"(run {ran.json['run_id']}): kernel 6.1" in host1.disabled_reason

    status = nmf("host-maintenance", "status", "--format", "json")
    assert status.code == 0, status.err
    (row,) = status.json["hosts"]
    assert (row["host"], row["maintenance"], row["run_id"], row["up"],
            row["moved"], row["reason"]) == (
        "host1", True, ran.json["run_id"], True, 4, "kernel 6.1")
    assert sum(row["destinations"].values()) == 4
    assert set(row["destinations"]) <= {"host2", "host3", "host4"}


def test_enter_without_room_is_refused_before_any_change(
        nmf, boot_servers, sdk, sandbox_client):
    boot_servers("host1", count=2, flavor="m1.medium")
    for host in ("host2", "host3", "host4"):
        sandbox_client.set_host_capacity(host, vcpus=1, memory_mb=1024,
                                         disk_gb=10)
    before = cli.snapshot(sdk)

    ran = nmf("host-maintenance", "enter", "host1")

    assert ran.code == 2
    assert "no room for m1.medium" in ran.error_line()
    assert cli.snapshot(sdk) == before


def test_exit_moves_back_what_enter_moved_and_skips_what_changed(
        nmf, boot_servers, sdk):
    running = boot_servers("host1", count=2,
                           metadata=cli.server_metadata(duration=1))
    (stopped,) = boot_servers("host1", stopped=True)
    (resized,) = boot_servers("host1", flavor="m1.tiny",
                              metadata=cli.server_metadata(duration=1))
    (deleted,) = boot_servers("host1",
                              metadata=cli.server_metadata(duration=1))
    entered = nmf("host-maintenance", "enter", "host1", "--format", "json")
    assert entered.code == 0, entered.err
    sdk.compute.resize_server(resized["id"], sdk.compute.find_flavor(
        "m1.small").id)
    cli.wait_until(lambda: where(sdk, resized["id"])[1] == "VERIFY_RESIZE")
    sdk.compute.confirm_server_resize(resized["id"])
    cli.wait_until(lambda: where(sdk, resized["id"])[1] == "ACTIVE")
    sdk.compute.delete_server(deleted["id"])
    sdk.compute.wait_for_delete(sdk.compute.get_server(deleted["id"]),
                                interval=0.2, wait=60)

    ran = nmf("host-maintenance", "exit", "host1", "--move-back",
              "--format", "json")

    assert ran.code == 0, ran.err
    for server, status, kind in (
            [(s, "ACTIVE", "live-migration") for s in running]
            + [(stopped, "SHUTOFF", "migration")]):
        assert ran.result_of(server["id"])["status"] == "migrated"
        assert where(sdk, server["id"]) == ("host1", status)
        away, back = (entered.result_of(server["id"])["destination"],
                      "host1")
        # Exactly one move each way, as Nova recorded them.
        records = migrations_of(sdk, server["id"])
        assert [(t, s, d) for t, s, d, _ in records] == sorted(
            [(kind, "host1", away), (kind, away, back)])
    assert ran.result_of(resized["id"])["status"] == "skipped"
    assert "resized since" in ran.result_of(resized["id"])["reason"]
    assert ran.result_of(deleted["id"])["status"] == "skipped"
    assert "deleted" in ran.result_of(deleted["id"])["reason"]
    assert where(sdk, resized["id"])[0] != "host1"
    host1 = services(sdk)["host1"]
    assert (host1.status, host1.disabled_reason) == ("enabled", None)
    (host,) = ran.json["hosts"]
    assert (host["service"], host["returned"], host["enabled_by_us"]) == (
        "enabled", 3, True)


def test_exit_refuses_a_down_host_and_leaves_one_disabled_by_others(
        nmf, sdk, sandbox_client):
    sdk.compute.disable_service(services(sdk)["host3"], "host3",
                                "nova-compute", "broken disk")
    sandbox_client.stop_compute("host2")
    cli.wait_until(lambda: services(sdk)["host2"].state == "down",
                   timeout=120)
    before = cli.snapshot(sdk)

    down = nmf("host-maintenance", "exit", "host2")
    assert down.code == 2
    assert "host host2: its compute service is down" in down.error_line()
    assert cli.snapshot(sdk) == before

    other = nmf("host-maintenance", "exit", "host3", "--format", "json")
    assert other.code == 1
    (host,) = other.json["hosts"]
    assert host["service"] == "disabled"
    assert "not disabled by 'host-maintenance enter'" in host["reason"]
    assert services(sdk)["host3"].disabled_reason == "broken disk"


def hook_command(sandbox, log: pathlib.Path, extra: str = "") -> str:
    """A hook that logs its host, stops and starts the host's nova-compute
    through the sandbox's control API; ``extra`` runs in between."""
    tool = (f"{shlex.quote(sys.executable)} -m nova_migrate_flows.cli "
            f"sandbox")
    state = shlex.quote(str(sandbox.state_dir))
    return (f'echo "$NMF_HOST $NMF_RUN_ID" >> {shlex.quote(str(log))} && '
            f"{tool} stop-compute --state-dir {state} --host $NMF_HOST && "
            f"{extra}"
            f"{tool} start-compute --state-dir {state} --host $NMF_HOST")


def boot_one_per_host(boot_servers, hosts):
    return {host: boot_servers(host, metadata=cli.server_metadata(
        duration=1))[0] for host in hosts}


def test_a_roll_brings_every_host_back_with_its_servers(
        nmf, boot_servers, sdk, sandbox, tmp_path):
    hosts = ["host1", "host2"]
    homes = boot_one_per_host(boot_servers, hosts)
    log = tmp_path / "hooks.log"

    ran = nmf("host-maintenance", "roll", *hosts, "--batch", "1",
              "--hook", hook_command(sandbox, log), "--move-back",
              "--wait-up", "120", "--format", "json")

    assert ran.code == 0, ran.err
    assert [line.split() for line in log.read_text().splitlines()] == [
        [host, ran.json["run_id"]] for host in hosts]
    for host, server in homes.items():
        assert where(sdk, server["id"]) == (host, "ACTIVE")
        assert len(migrations_of(sdk, server["id"])) == 2
    for host in hosts:
        service = services(sdk)[host]
        assert (service.status, service.state) == ("enabled", "up")
    assert [(h["host"], h["done"], h["moved_away"], h["moved_back"])
            for h in ran.json["hosts"]] == [
        (host, True, 1, 1) for host in hosts]


def test_a_failing_hook_stops_the_roll_at_its_host(
        nmf, boot_servers, sdk, tmp_path):
    hosts = ["host1", "host2", "host3"]
    homes = boot_one_per_host(boot_servers, hosts)

    ran = nmf("host-maintenance", "roll", *hosts, "--batch", "1",
              "--hook", '[ "$NMF_HOST" != host2 ] || { echo disk >&2; '
              "exit 3; }", "--move-back", "--format", "json")

    assert ran.code == 1
    rows = {h["host"]: h for h in ran.json["hosts"]}
    assert rows["host1"]["done"] is True
    assert (rows["host2"]["done"], rows["host2"]["step"]) == (False, "hook")
    assert "hook failed: the hook on host2 exited with 3: disk" in \
        rows["host2"]["reason"]
    assert (rows["host3"]["done"], rows["host3"]["step"]) == (
        False, "pending")
    now = services(sdk)
    assert now["host1"].status == "enabled"
    assert now["host2"].status == "disabled"
    assert now["host2"].disabled_reason.startswith(MARKER)
    assert now["host3"].status == "enabled"
    assert where(sdk, homes["host1"]["id"])[0] == "host1"
    assert where(sdk, homes["host2"]["id"])[0] != "host2"
    assert where(sdk, homes["host3"]["id"]) == ("host3", "ACTIVE")
    assert migrations_of(sdk, homes["host3"]["id"]) == []


def test_a_killed_roll_resumes_without_repeating_anything(
        nmf, boot_servers, sdk, sandbox, tmp_path):
    hosts = ["host1", "host2", "host3"]
    homes = boot_one_per_host(boot_servers, hosts)
    log = tmp_path / "hooks.log"
    flag = tmp_path / "killed-once"
    # The hook of host2 hangs the first time, and is killed there.
    hang = (f'if [ "$NMF_HOST" = host2 ] && [ ! -e {flag} ]; then '
            f"touch {flag}; sleep 600; fi && ")
    argv = ("host-maintenance", "roll", *hosts, "--batch", "1", "--hook",
            hook_command(sandbox, log, hang), "--move-back", "--wait-up",
            "120", "--format", "json")
    process = cli.spawn_cli(sandbox.config_file, nmf.config, *argv)
    try:
        cli.wait_until(flag.exists, timeout=300)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    listed = nmf("flows", "list", "--format", "json")
    (roll,) = [r for r in listed.json["runs"]
               if r["operation"] == "host-maintenance-roll"]
    assert roll["state"] == "running"
    assert where(sdk, homes["host1"]["id"])[0] == "host1"
    assert where(sdk, homes["host2"]["id"])[0] != "host2"

    resumed = nmf("resume", roll["run_id"], "--format", "json")

    assert resumed.code == 0, resumed.err
    # Each server moved exactly once away and once back: nothing repeated.
    for host, server in homes.items():
        assert where(sdk, server["id"]) == (host, "ACTIVE")
        assert len(migrations_of(sdk, server["id"])) == 2, host
    # host1's hook ran once; host2's, interrupted, ran again (hooks are
    # idempotent); host3's once.
    assert [line.split()[0] for line in log.read_text().splitlines()] == [
        "host1", "host2", "host2", "host3"]
    for host in hosts:
        assert services(sdk)[host].status == "enabled"
    assert [h["done"] for h in resumed.json["hosts"]] == [True] * 3


def test_an_interrupted_roll_stops_and_resumes(nmf, boot_servers, sdk,
                                               sandbox, tmp_path):
    servers = boot_servers("host1", count=2,
                           metadata=cli.server_metadata(duration=4))
    (other,) = boot_servers("host2", metadata=cli.server_metadata(
        duration=1))
    log = tmp_path / "hooks.log"
    process = cli.spawn_cli(
        sandbox.config_file, nmf.config, "host-maintenance", "roll",
        "host1", "host2", "--batch", "1", "--hook",
        f"echo $NMF_HOST >> {log}", "--move-back", "--format", "json")
    cli.wait_until(lambda: any(
        m.status == "running" for s in servers
        for m in cli.live_migrations(sdk, s["id"])))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)

    assert process.returncode == 3, err
    stopped = json.loads(out)
    assert stopped["interrupted"] is True
    assert not log.exists()  # no hook started
    # As in a drain: the migrations in flight were aborted, the servers are
    # safe on host1, and its service is enabled again.
    for server in servers:
        assert where(sdk, server["id"]) == ("host1", "ACTIVE")
    assert services(sdk)["host1"].status == "enabled"
    assert migrations_of(sdk, other["id"]) == []

    resumed = nmf("resume", stopped["run_id"], "--format", "json")

    assert resumed.code == 0, resumed.err
    assert log.read_text().split() == ["host1", "host2"]
    for host, server in [("host1", s) for s in servers] + [("host2", other)]:
        assert where(sdk, server["id"]) == (host, "ACTIVE")
    for host in ("host1", "host2"):
        assert services(sdk)[host].status == "enabled"
