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
"""Helpers of the functional tests: running the command line against the
sandbox, and snapshots of the cloud to prove "nothing changed"."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

import openstack

from nova_migrate_flows.cli import main as cli
from nova_migrate_flows.sandbox import constants


@dataclasses.dataclass
class Ran:
    """What one command-line run did."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.json["results"])

    def result_of(self, server_id: str) -> dict[str, Any]:
        return next(r for r in self.results if r["server"] == server_id)

    def error_line(self) -> str:
        lines = [line for line in self.err.splitlines()
                 if line.startswith("nova-migrate-flow: error: ")]
        assert len(lines) == 1, self.err
        return lines[0]


def write_config(directory: pathlib.Path, text: str = "") -> str:
    """A configuration file for a test: its own state directory, fast
    polling, and ``text`` on top."""
    path = directory / "test.conf"
    path.write_text(
        f"[DEFAULT]\nstate_dir = {directory / 'state'}\n"
        "[migration]\npoll_interval = 0.5\npoll_interval_min = 0.1\n"
        + text
    )
    return str(path)


def run_cli(capsys: Any, sandbox_config: str, test_config: str,
            *argv: str) -> Ran:
    """Run ``nova-migrate-flow`` in this process, like a person would."""
    code = cli.main(["--config-file", sandbox_config, "--config-file",
                     test_config, *argv])
    out, err = capsys.readouterr()
    return Ran(code, out, err)


def spawn_cli(sandbox_config: str, test_config: str,
              *argv: str) -> subprocess.Popen[str]:
    """Start ``nova-migrate-flow`` as a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "nova_migrate_flows.cli", "--config-file",
         sandbox_config, "--config-file", test_config, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ),
    )


def snapshot(sdk: openstack.connection.Connection) -> dict[str, Any]:
    """Servers, compute services and migrations, to compare before and
    after an operation that must change nothing."""
    return {
        "servers": sorted(
            (s.id, s.compute_host, s.status, s.task_state)
            for s in sdk.compute.servers(all_projects=True)
        ),
        "services": sorted(
            (s.host, s.status, s.disabled_reason, s.is_forced_down)
            for s in sdk.compute.services(binary="nova-compute")
        ),
        "migrations": sorted(
            (m.id, m.status) for m in sdk.compute.migrations()
        ),
    }


def server_metadata(duration: float | None = None,
                    result: str | None = None) -> dict[str, str]:
    """Metadata that tells the sandbox's driver how to migrate a server."""
    metadata = {}
    if duration is not None:
        metadata[constants.META_LIVE_MIGRATION_DURATION] = str(duration)
    if result is not None:
        metadata[constants.META_LIVE_MIGRATION_RESULT] = result
    return metadata


def live_migrations(sdk: openstack.connection.Connection,
                    server_id: str) -> list[Any]:
    return [m for m in sdk.compute.migrations(instance_uuid=server_id)
            if m.migration_type == "live-migration"]


def wait_for_migration(sdk: openstack.connection.Connection, server_id: str,
                       status: str, timeout: float = 60.0) -> Any:
    """The server's live migration once it reaches ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for migration in live_migrations(sdk, server_id):
            if migration.status == status:
                return migration
        time.sleep(0.2)
    raise AssertionError(f"no live migration of {server_id} became {status}")


def wait_until(probe: Any, timeout: float = 60.0, interval: float = 0.2
               ) -> None:
    """Wait until ``probe()`` is true."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)
