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
"""The two clouds a scenario runs on, and what a client sees of a run.

Both are driven through the tool's own compute interface
(:class:`~nova_migrate_flows.compute.base.Compute`): the in-memory fake,
and :class:`~nova_migrate_flows.compute.nova.NovaCompute` against the
sandbox's real Nova. :class:`Run` sends a scenario's requests, keeps the
HTTP code of each answer and every status it sees on the way.
"""

import collections
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import base, fake, models, nova
from nova_migrate_flows.sandbox import constants, control
from tests.functional import conftest

#: Hosts of both clouds: the sandbox of the functional tests has four.
HOSTS = constants.compute_hosts(4)
#: How long a live migration runs: a short one, and one that lasts until
#: the scenario has done what it does while it runs.
SHORT, LONG = "short", "long"
_SANDBOX_SECONDS = {SHORT: 1.0, LONG: 60.0}
_FAKE_STEPS = {SHORT: 2, LONG: 1000}
#: Bounds of a wait: real time on the sandbox, steps on the fake.
SANDBOX_PATIENCE = 120.0
FAKE_PATIENCE = 200


class Cloud(Protocol):
    """What a scenario needs of a cloud besides its compute interface."""

    compute: base.Compute
    #: Every step is seen (the fake), or only what a poll catches.
    sees_every_step: bool

    def boot(self, host: str, *, live: str = constants.RESULT_SUCCESS,
             duration: str = SHORT, status: str = "ACTIVE",
             cold: str = constants.RESULT_SUCCESS,
             revert: str = constants.RESULT_SUCCESS) -> str:
        """A new m1.tiny server on ``host`` (ACTIVE, SHUTOFF or PAUSED)
        whose live migrations end as ``live`` says, its cold moves and
        evacuations as ``cold`` says, the reverts of its cold moves as
        ``revert`` says; its id."""

    def server(self, server_id: str) -> models.Server:
        """The server as it is now."""

    def migrations(self, server_id: str) -> list[models.Migration]:
        """The server's migration records, newest first."""

    def stop_compute(self, host: str) -> None:
        """Stop the nova-compute service of ``host`` (a failed host)."""

    def wait(self, until: Callable[[], bool], what: str) -> None:
        """Let the cloud go on until ``until()`` holds."""


class FakeCloud:
    """The in-memory fake; it moves on one step per look."""

    sees_every_step = True

    def __init__(self) -> None:
        self.compute = fake.FakeCompute(HOSTS)

    def boot(self, host: str, *, live: str = constants.RESULT_SUCCESS,
             duration: str = SHORT, status: str = "ACTIVE",
             cold: str = constants.RESULT_SUCCESS,
             revert: str = constants.RESULT_SUCCESS) -> str:
        server = self.compute.add_server(host, flavor="m1.tiny",
                                         status=status)
        self.compute.behaviours[server.id] = fake.Behaviour(
            live=live, cold=cold, revert=revert,
            steps=_FAKE_STEPS[duration])
        return server.id

    def server(self, server_id: str) -> models.Server:
        return self.compute.servers[server_id]

    def migrations(self, server_id: str) -> list[models.Migration]:
        return [m.record for m in reversed(self.compute.migrations)
                if m.record.server_id == server_id]

    def stop_compute(self, host: str) -> None:
        """Nothing runs: the service is up until it is forced down."""

    def wait(self, until: Callable[[], bool], what: str) -> None:
        for _ in range(FAKE_PATIENCE):
            if until():
                return
            self.compute.advance()
        raise AssertionError(f"the fake never got to {what}")


class SandboxCloud:
    """Real Nova in the sandbox, through the tool's NovaCompute."""

    sees_every_step = False

    def __init__(self, sandbox_client: control.SandboxClient,
                 boot_servers: conftest.BootServers, sdk: Any) -> None:
        self.compute = nova.NovaCompute(sdk)
        self._sdk = sdk
        self._client = sandbox_client
        self._boot = boot_servers

    def boot(self, host: str, *, live: str = constants.RESULT_SUCCESS,
             duration: str = SHORT, status: str = "ACTIVE",
             cold: str = constants.RESULT_SUCCESS,
             revert: str = constants.RESULT_SUCCESS) -> str:
        [server] = self._boot(host, stopped=status == "SHUTOFF", metadata={
            constants.META_LIVE_MIGRATION_RESULT: live,
            constants.META_LIVE_MIGRATION_DURATION:
                str(_SANDBOX_SECONDS[duration]),
            constants.META_COLD_MIGRATION_RESULT: cold,
            constants.META_EVACUATION_RESULT: cold,
            constants.META_RESIZE_REVERT_RESULT: revert,
        })
        if status == "PAUSED":
            self._sdk.compute.pause_server(server["id"])
            self.wait(lambda: self.server(server["id"]).status == "PAUSED",
                      "a paused server")
        return str(server["id"])

    def server(self, server_id: str) -> models.Server:
        return self.compute.get_server(server_id)

    def migrations(self, server_id: str) -> list[models.Migration]:
        return self.compute.list_migrations(server_id=server_id)

    def stop_compute(self, host: str) -> None:
        self._client.stop_compute(host)

    def wait(self, until: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + SANDBOX_PATIENCE
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Nova did not get to {what} in {SANDBOX_PATIENCE} s")
            time.sleep(0.1)


def server_key(server: models.Server) -> str:
    """What a client sees of a server's state: ``STATUS[:task_state]``."""
    if server.task_state:
        return f"{server.status}:{server.task_state}"
    return server.status


@dataclasses.dataclass
class Seen:
    """What a client observed of one run: compared between the clouds."""

    #: Each request, by label, and the HTTP code of its refusal (None:
    #: taken).
    answers: list[tuple[str, int | None]]
    #: Each server, by label: status, task state, host, flavor.
    servers: dict[str, tuple[str, str | None, str | None, str]]
    #: Each server's migration records, oldest first: kind, status,
    #: source, target (``scheduled`` where the scheduler chose it).
    records: dict[str, list[tuple[str | None, str, str | None, str | None]]]
    #: Each server's instance actions since it was booted, oldest first.
    actions: dict[str, list[str]]


class Run:
    """One scenario's run on one cloud: its requests and what it saw."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.compute = cloud.compute
        self.ids: dict[str, str] = {}
        self.answers: list[tuple[str, int | None]] = []
        #: Server states seen, per label, repeats dropped.
        self.server_paths: dict[str, list[str]] = collections.defaultdict(
            list)
        #: Migration statuses seen, per migration id, with its kind.
        self.migration_paths: dict[int, tuple[str, list[str]]] = {}
        self._scheduled: set[str] = set()
        #: Instance actions each server had once booted (create, pause).
        self._booted_with: dict[str, int] = {}

    def boot(self, label: str, host: str, **options: Any) -> str:
        self.ids[label] = self.cloud.boot(host, **options)
        self._booted_with[label] = len(
            self.compute.instance_actions(self.ids[label]))
        self.look(label)
        return self.ids[label]

    def ask(self, label: str, request: Callable[[], object]) -> None:
        """Send a request; keep the HTTP code of a refusal."""
        try:
            request()
        except exceptions.ComputeError as exc:
            self.answers.append((label, exc.status_code))
            return
        self.answers.append((label, None))

    def scheduled(self, label: str) -> None:
        """The scheduler chooses the target of ``label``'s moves."""
        self._scheduled.add(label)

    def look(self, label: str) -> tuple[models.Server,
                                        list[models.Migration]]:
        """Read the server and its migrations; remember what changed."""
        server = self.cloud.server(self.ids[label])
        path = self.server_paths[label]
        if not path or path[-1] != server_key(server):
            path.append(server_key(server))
        records = self.cloud.migrations(self.ids[label])
        for record in records:
            kind, statuses = self.migration_paths.setdefault(
                record.id, (record.migration_type or "", []))
            if not statuses or statuses[-1] != record.status:
                statuses.append(record.status)
        return server, records

    def until(self, label: str, what: str,
              done: Callable[[models.Server, list[models.Migration]], bool]
              ) -> models.Migration | None:
        """Look at ``label`` until ``done(server, migrations)``; its newest
        migration then."""
        newest: list[models.Migration | None] = [None]

        def check() -> bool:
            server, records = self.look(label)
            newest[0] = records[0] if records else None
            return done(server, records)

        self.cloud.wait(check, f"{what} ({label})")
        return newest[0]

    def migration_status(self, label: str, *statuses: str
                         ) -> models.Migration:
        """Wait until the newest migration of ``label`` has one of
        ``statuses``."""
        record = self.until(
            label, f"a migration {' or '.join(statuses)}",
            lambda server, records: bool(records)
            and records[0].status in statuses)
        assert record is not None
        return record

    def settled(self, label: str) -> None:
        """Wait until ``label`` has no task and its migrations are over
        (or wait for confirmation)."""
        self.until(label, "the end of its move", lambda server, records: (
            server.task_state is None and all(
                r.is_final or r.status in ("finished", "done")
                for r in records)
            # Nova's compute saves a confirmed migration before the server
            # it makes ACTIVE again.
            and not (server.status == "VERIFY_RESIZE" and records
                     and records[0].status == "confirmed")))

    def seen(self) -> Seen:
        servers = {}
        records = {}
        actions = {}
        for label, server_id in self.ids.items():
            taken = self.compute.instance_actions(server_id)
            actions[label] = [a.action for a in reversed(
                taken[:len(taken) - self._booted_with[label]])]
            server = self.compute.get_server(server_id)
            servers[label] = (server.status, server.task_state, server.host,
                              server.flavor_info.name)
            records[label] = [
                (r.migration_type, r.status, r.source_compute,
                 "scheduled" if label in self._scheduled else r.dest_compute)
                for r in reversed(self.compute.list_migrations(
                    server_id=server_id))]
        return Seen(list(self.answers), servers, records, actions)
