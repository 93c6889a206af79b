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
"""SIGINT and SIGTERM during a host evacuation."""

import json
import signal
from typing import IO

import pytest

from tests.functional.operations import cli

pytestmark = pytest.mark.functional


def service(sdk, host):
    return next(s for s in sdk.compute.services(binary="nova-compute")
                if s.host == host)


def read_until(stream: IO[str], text: str) -> str:
    """What ``stream`` gives up to the first line with ``text``."""
    lines = []
    for line in stream:
        lines.append(line)
        if text in line:
            return "".join(lines)
    raise AssertionError(f"never written: {text!r}; got {''.join(lines)}")


def start_and_wait_for_a_running_migration(nmf, sandbox, sdk, servers,
                                           config=None):
    process = cli.spawn_cli(sandbox.config_file, config or nmf.config,
                            "host-evacuate-live", "host1", "--format",
                            "json")
    cli.wait_until(lambda: any(
        m.status == "running"
        for s in servers for m in cli.live_migrations(sdk, s["id"])))
    return process


def test_sigterm_lets_in_flight_migrations_finish_when_asked(
        nmf, boot_servers, sdk, sandbox):
    servers = boot_servers("host1", count=4,
                           metadata=cli.server_metadata(duration=4))
    config = nmf.write("[drain]\ninterrupt_action = finish\n")
    process = start_and_wait_for_a_running_migration(nmf, sandbox, sdk,
                                                     servers, config)

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)

    assert process.returncode == 3, err
    data = json.loads(out)
    assert data["interrupted"] is True
    by_status = {}
    for result in data["results"]:
        by_status.setdefault(result["status"], []).append(result)
    assert by_status.get("migrated"), data
    assert "failed" not in by_status
    for result in by_status.get("skipped", []):
        assert result["reason"].startswith("not started: interrupted")
    for server in servers:
        for migration in cli.live_migrations(sdk, server["id"]):
            assert migration.status == "completed"
    # What was not started stays; an interrupted run enables the service
    # it disabled again, an emptied host stays disabled.
    left = {s["id"] for s in servers
            if sdk.compute.get_server(s["id"]).compute_host == "host1"}
    skipped = {r["server"] for r in by_status.get("skipped", [])}
    assert left == skipped, [
        (s["id"], sdk.compute.get_server(s["id"]).compute_host,
         [m.status for m in cli.live_migrations(sdk, s["id"])])
        for s in servers]
    assert service(sdk, "host1").status == (
        "enabled" if left else "disabled")


def test_a_second_sigint_stops_at_once_and_resume_finishes(
        nmf, boot_servers, sdk, sandbox):
    servers = boot_servers("host1", count=3,
                           metadata=cli.server_metadata(duration=4))
    # Letting the migration in flight finish keeps the run busy after the
    # first signal (two signals at once would reach Python as one).
    config = nmf.write("[drain]\ninterrupt_action = finish\n")
    process = start_and_wait_for_a_running_migration(nmf, sandbox, sdk,
                                                     servers, config)

    process.send_signal(signal.SIGINT)
    # Once it says so, the process has taken the first signal.
    first = read_until(process.stderr, "no new migration starts")
    process.send_signal(signal.SIGINT)
    out, rest = process.communicate(timeout=60)
    err = first + rest

    assert process.returncode == 3, err
    assert "stopping now" in err
    listed = nmf.with_config(config, "flows", "list", "--format",
                             "json").json["runs"]
    (run,) = [r for r in listed if r["state"] == "running"]
    ran = nmf.with_config(config, "resume", run["run_id"], "--format",
                          "json")
    assert ran.code == 0, ran.err
    assert [r["status"] for r in ran.results] == ["migrated"] * 3
    for server in servers:
        assert sdk.compute.get_server(server["id"]).compute_host != "host1"
        statuses = [m.status for m in cli.live_migrations(sdk, server["id"])]
        assert statuses.count("completed") == 1
    assert service(sdk, "host1").status == "disabled"


def test_resume_moves_what_an_interrupt_kept_from_moving(nmf, boot_servers,
                                                       sdk, sandbox):
    servers = boot_servers("host1", count=3,
                           metadata=cli.server_metadata(duration=3))
    process = start_and_wait_for_a_running_migration(nmf, sandbox, sdk,
                                                     servers)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    interrupted = json.loads(out)
    assert process.returncode == 3
    kept = [r for r in interrupted["results"] if r["status"] != "migrated"]
    assert kept and all(r["status"] == "skipped" for r in kept)
    assert service(sdk, "host1").status == "enabled"

    ran = nmf("resume", interrupted["run_id"], "--format", "json")

    assert ran.code == 0, ran.err
    assert [r["status"] for r in ran.results] == ["migrated"] * 3
    for server in servers:
        statuses = [m.status for m in cli.live_migrations(sdk, server["id"])]
        assert statuses.count("completed") == 1, statuses
    host1 = service(sdk, "host1")
    assert host1.status == "disabled"
    assert "evacuated" in host1.disabled_reason
