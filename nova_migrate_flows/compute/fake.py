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
"""A stateful, in-memory compute cloud with Nova's behaviour and shapes.

For unit tests and for benchmarking the orchestrator alone: migrations really
move servers between hosts, Nova's per-host live-migration limit queues the
extras, capacity is counted, services go up and down, and every server can
be told to fail, hang or find no valid host. Time is counted in *steps*: each
read a client waits with (``list_migrations``, ``get_server``,
``list_servers``) moves the cloud on by one step, so tests are deterministic;
``steps=0`` does every request as it is made.

What a client sees follows Nova's own paths: a migration goes through the
statuses Nova gives it (a live one ``accepted``, ``queued``, ``preparing``,
``running``, then ``completed``, ``failed`` or ``cancelled``; a cold one
``pre-migrating``, ``migrating``, ``post-migrating``, ``finished``, then
``confirming``/``confirmed`` or ``reverting``/``reverted``; an evacuation
``accepted``, ``pre-migrating``, then ``done`` or ``failed``), a server
through its ``RESIZE``, ``REVERT_RESIZE``, ``REBUILD`` and powering task
states, and the API refuses with the HTTP codes Nova uses.
"""

import collections
import dataclasses
import datetime
import email.utils
import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import base, microversions, models

GIB = 1024 ** 3
MIB = 1024 ** 2
#: The kinds of cold move: they end ``finished``, waiting to be confirmed.
COLD_KINDS = frozenset({"migration", "resize"})
#: Live-migration statuses an abort is accepted in (microversion 2.65).
ABORTABLE_STATUSES = frozenset({"queued", "preparing", "running"})
#: The task state that follows another while Nova's computes finish a
#: cold move or rebuild an evacuated server.
_NEXT_TASK_STATE = {
    "resize_migrated": "resize_finish",
    "rebuild_block_device_mapping": "rebuild_spawning",
}

FLAVORS = {
    "m1.tiny": models.Flavor("m1.tiny", 512, 1, 1, id="1"),
    "m1.small": models.Flavor("m1.small", 2048, 1, 20, id="2"),
    "m1.medium": models.Flavor("m1.medium", 4096, 2, 40, id="3"),
    "m1.large": models.Flavor("m1.large", 8192, 4, 80, id="4"),
    "m1.ephemeral": models.Flavor(
        "m1.ephemeral", 2048, 1, 10, ephemeral_gb=5, swap_mb=512, id="5"
    ),
    # Flavors whose servers Nova does not live-migrate.
    "m1.pci": models.Flavor(
        "m1.pci", 2048, 1, 20, id="6",
        extra_specs={"pci_passthrough:alias": "nic:1"},
    ),
    "m1.vgpu": models.Flavor(
        "m1.vgpu", 2048, 1, 20, id="7", extra_specs={"resources:VGPU": "1"},
    ),
}


@dataclasses.dataclass
class Behaviour:
    """How the fake cloud treats one server's next migrations."""

    #: ``success``, ``fail``, ``hang`` or ``no_valid_host``.
    live: str = "success"
    #: ``success``, ``fail`` or ``no_valid_host`` for cold moves (a
    #: failed one is rolled back) and evacuations (a failed one leaves the
    #: server in ERROR).
    cold: str = "success"
    #: ``success`` or ``fail`` for the revert of a cold move (a failed one
    #: leaves the server in ERROR on its source, with its old flavor).
    revert: str = "success"
    #: Steps a migration stays ``running``; None: the cloud's default.
    steps: int | None = None


@dataclasses.dataclass
class _Migration:
    record: models.Migration
    kind: str
    steps_left: int
    outcome: str
    #: The server's flavor when the move started.
    flavor: models.Flavor
    new_flavor: models.Flavor | None = None
    started: bool = False
    #: An abort Nova accepted: the migration is cancelled at its next step.
    aborting: bool = False


class FakeCompute:
    """:class:`~nova_migrate_flows.compute.base.Compute` kept in memory."""

    def __init__(
        self,
        hosts: int | list[str] = 4,
        *,
        vcpus: int = 64,
        ram_mb: int = 262144,
        disk_gb: int = 4096,
        steps: int = 2,
        max_concurrent_live_migrations: int = 1,
        max_microversion: str = "2.96",
    ):
        names = (
            [f"host{i}" for i in range(1, hosts + 1)]
            if isinstance(hosts, int) else list(hosts)
        )
        self._lock = threading.RLock()
        self.steps = steps
        #: The newest compute API microversion of the Nova it plays: from
        #: 2.95 an evacuated server is left stopped.
        self.max_microversion = max_microversion
        self.max_concurrent_live_migrations = max_concurrent_live_migrations
        self.flavors = dict(FLAVORS)
        self.servers: dict[str, models.Server] = {}
        #: When (the fake clock) each server last changed.
        self.server_changed: dict[str, str] = {}
        self.services: dict[str, models.Service] = {
            host: models.Service(
                id=str(uuid.uuid5(uuid.NAMESPACE_DNS, host)),
                host=host,
                binary="nova-compute",
                status="enabled",
                state="up",
                zone="nova",
            )
            for host in names
        }
        self.capacity: dict[str, models.HostCapacity] = {
            host: models.HostCapacity(host, vcpus, ram_mb, disk_gb)
            for host in names
        }
        self.behaviours: dict[str, Behaviour] = collections.defaultdict(
            Behaviour
        )
        self.migrations: list[_Migration] = []
        self.server_groups: dict[str, models.ServerGroup] = {}
        self.actions: dict[str, list[models.InstanceAction]] = (
            collections.defaultdict(list)
        )
        #: Every call made, by method name: tests check API economy with it.
        self.calls: collections.Counter[str] = collections.Counter()
        #: The write calls made, in order, as (method, server or service).
        self.writes: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._clock = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        #: What Nova's computes still have to do for requests the API took
        #: (confirm, revert, start, stop): done at the next step.
        self._pending: list[Callable[[], None]] = []

    def close(self) -> None:
        """Nothing to close: the cloud lives in memory."""

    def api_versions(self) -> tuple[str, str]:
        """The range of the Nova it plays: ``max_microversion``."""
        return ("2.1", self.max_microversion)

    def prefetch(self) -> None:
        """Nothing to fetch: the cloud lives in memory."""

    def target(self) -> dict[str, Any]:
        """The in-memory cloud."""
        return {"cloud": "in-memory", "compute_endpoint": None}

    # -- building the cloud ------------------------------------------------

    def add_server(
        self,
        host: str,
        *,
        name: str | None = None,
        flavor: str = "m1.small",
        status: str = "ACTIVE",
        server_id: str | None = None,
        group: str | None = None,
        **fields: Any,
    ) -> models.Server:
        """Put a server on ``host`` and take its room there (with a new id
        unless ``server_id`` is given), in server group ``group`` (an id)
        if given."""
        with self._lock:
            if host not in self.services:
                raise ValueError(f"no host {host}")
            flavor_info = self.flavors[flavor]
            server_id = server_id or str(uuid.uuid4())
            power = {
                "ACTIVE": models.POWER_STATE_RUNNING,
                "PAUSED": models.POWER_STATE_PAUSED,
            }.get(status, models.POWER_STATE_SHUTDOWN)
            vm_state = {
                "ACTIVE": "active",
                "PAUSED": "paused",
                "SHUTOFF": "stopped",
                "SUSPENDED": "suspended",
                "ERROR": "error",
            }.get(status, status.lower())
            server = models.Server(
                id=server_id,
                name=name or f"server-{len(self.servers) + 1}",
                status=status,
                host=host,
                hypervisor_hostname=host,
                flavor=flavor_info.to_dict(),
                vm_state=vm_state,
                power_state=power,
                project_id="demo",
                updated=self._clock.isoformat(),
                **fields,
            )
            self.servers[server_id] = server
            self.capacity[host] = self.capacity[host].minus(flavor_info)
            if group is not None:
                joined = self.server_groups[group]
                self.server_groups[group] = dataclasses.replace(
                    joined, members=joined.members + (server_id,))
            return server

    def add_server_group(
        self,
        name: str,
        policy: str,
        *,
        rules: dict[str, Any] | None = None,
        group_id: str | None = None,
    ) -> models.ServerGroup:
        """A new, empty server group; ``add_server(group=...)`` adds
        members."""
        with self._lock:
            group = models.ServerGroup(
                id=group_id or str(uuid.uuid4()), name=name, policy=policy,
                rules=dict(rules or {}), project_id="demo",
            )
            self.server_groups[group.id] = group
            return group

    def delete_server(self, server_id: str) -> None:
        """Delete a server, as its owner would: its room comes back, its
        moves in flight end in error, and it leaves its group."""
        with self._lock:
            server = self._server(server_id)
            for migration in self.migrations:
                if (migration.record.server_id == server_id
                        and not migration.record.is_final):
                    self._set(migration, status="error")
                    self._release(migration, migration.record.dest_compute)
            if server.host:
                self.capacity[server.host] = self.capacity[
                    server.host].plus(server.flavor_info)
            del self.servers[server_id]
            for group in list(self.server_groups.values()):
                if server_id in group.members:
                    self.server_groups[group.id] = dataclasses.replace(
                        group, members=tuple(
                            m for m in group.members if m != server_id))

    def set_service(self, host: str, **fields: Any) -> None:
        with self._lock:
            self.services[host] = dataclasses.replace(
                self.services[host], **fields
            )

    # -- helpers -----------------------------------------------------------

    def _now(self) -> str:
        self._clock += datetime.timedelta(seconds=1)
        return self._clock.isoformat()

    def _server(self, server_id: str) -> models.Server:
        try:
            return self.servers[server_id]
        except KeyError:
            raise exceptions.NotFound(
                f"server {server_id} not found", 404
            ) from None

    def _update_server(self, server_id: str, **fields: Any) -> None:
        self.servers[server_id] = dataclasses.replace(
            self.servers[server_id], updated=self._clock.isoformat(),
            **fields
        )
        self.server_changed[server_id] = self._clock.isoformat()

    def _record_action(
        self,
        server_id: str,
        action: str,
        error: str | None = None,
    ) -> base.ActionResult:
        request_id = f"req-{uuid.uuid4()}"
        events: tuple[dict[str, Any], ...] = ()
        if error:
            events = (
                models.ActionEvent(
                    event=f"compute_{action}",
                    result="Error",
                    start_time=self._now(),
                    finish_time=self._now(),
                    details=error,
                ).to_dict(),
            )
        self.actions[server_id].insert(
            0,
            models.InstanceAction(
                action=action,
                request_id=request_id,
                start_time=self._now(),
                message="Error" if error else None,
                events=events,
            ),
        )
        return base.ActionResult(
            request_id, email.utils.format_datetime(self._clock, usegmt=True)
        )

    def _write(self, method: str, target: str) -> None:
        self.calls[method] += 1
        self.writes.append((method, target))

    def _check_target(self, server: models.Server, host: str | None,
                      same_host: bool = False) -> None:
        """What Nova's API checks of a move's target before it accepts the
        move (HTTP 400); ``same_host``: the API leaves that check to the
        conductor (a live migration, since microversion 2.34)."""
        if host and host not in self.services:
            raise exceptions.BadRequest(f"Compute host {host} not found", 400)
        if host and host == server.host and not same_host:
            raise exceptions.BadRequest(
                "The target host can't be the same one", 400
            )

    def _schedule(
        self,
        server: models.Server,
        kind: str,
        host: str | None,
        flavor: models.Flavor,
        refuse: bool,
        forced: bool = False,
    ) -> str | None:
        """The target, or None when the scheduler finds none.

        Nova schedules after it answered the request: a refusal ends the
        move's migration in error, and its instance action says why.
        """
        try:
            if refuse:
                raise exceptions.NoValidHost("No valid host was found.", 400)
            return self._pick_host(server, host, flavor, forced)
        except exceptions.NoValidHost as exc:
            self._refused_by_conductor(server, kind, str(exc))
            return None

    def _refused_by_conductor(self, server: models.Server, kind: str,
                              message: str) -> None:
        """Nova's conductor refused a move the API accepted: its migration
        record ends in error with no target, and its instance action says
        why."""
        self._fail_action(server.id, message)
        created = self._now()
        self.migrations.append(_Migration(
            models.Migration(
                id=next(self._ids), server_id=server.id, status="error",
                migration_type=kind, source_compute=server.host,
                created_at=created, updated_at=created,
            ),
            kind, 0, "fail", server.flavor_info,
        ))

    def _pick_host(
        self,
        server: models.Server,
        host: str | None,
        flavor: models.Flavor,
        forced: bool = False,
    ) -> str:
        if host:
            # Forcing skips the scheduler's filters, not placement's claim.
            service = self.services[host]
            if (not self.capacity[host].fits(flavor) or not service.up
                    or not (service.enabled or forced)
                    or not (forced or self._group_allows(server, [host]))):
                raise exceptions.NoValidHost(
                    f"No valid host was found. {host} is not suitable", 400
                )
            return host
        candidates = self._group_allows(server, [
            h for h, service in sorted(self.services.items())
            if h != server.host and service.up and service.enabled
            and self.capacity[h].fits(flavor)
        ])
        if not candidates:
            raise exceptions.NoValidHost("No valid host was found.", 400)
        return max(candidates, key=lambda h: self.capacity[h].ram_mb)

    def _group_allows(self, server: models.Server,
                      hosts: list[str]) -> list[str]:
        """The hosts Nova's server group filters leave: against the hosts
        the other members are on now (a member in flight still counts on
        its source, as in Nova)."""
        for group in self.server_groups.values():
            if server.id not in group.members:
                continue
            others = [self.servers[m].host for m in group.members
                      if m != server.id and m in self.servers]
            if group.policy == models.AFFINITY and others:
                hosts = [h for h in hosts if h in others]
            elif group.policy == models.ANTI_AFFINITY:
                hosts = [h for h in hosts
                         if others.count(h) < group.max_per_host]
        return hosts

    def _start(
        self,
        server: models.Server,
        kind: str,
        dest: str,
        outcome: str,
        new_flavor: models.Flavor | None = None,
    ) -> None:
        flavor = server.flavor_info
        behaviour = self.behaviours[server.id]
        steps = self.steps if behaviour.steps is None else behaviour.steps
        memory = flavor.ram_mb * MIB
        record = models.Migration(
            id=next(self._ids),
            server_id=server.id,
            status="pre-migrating" if kind in COLD_KINDS else "accepted",
            migration_type=kind,
            source_compute=server.host,
            dest_compute=dest,
            source_node=server.host,
            dest_node=dest,
            dest_host="127.0.0.1",
            old_flavor=flavor.id,
            new_flavor=(new_flavor or flavor).id,
            created_at=self._now(),
            # Nova sets it at the record's first save, not at its creation.
            updated_at=None,
            uuid=str(uuid.uuid4()),
            memory_total=memory,
            memory_processed=1,
            memory_remaining=memory,
            disk_total=1,
            disk_processed=1,
            disk_remaining=1,
        )
        self.capacity[dest] = self.capacity[dest].minus(
            new_flavor or flavor
        )
        migration = _Migration(record, kind, steps, outcome, flavor,
                               new_flavor)
        self.migrations.append(migration)
        if steps == 0:
            self._run_through(migration)

    def _running_live(self, host: str) -> int:
        return sum(
            1 for m in self.migrations
            if m.kind == "live-migration" and m.started
            and not m.record.is_final and m.record.source_compute == host
        )

    def _set(self, migration: _Migration, **fields: Any) -> None:
        migration.record = dataclasses.replace(
            migration.record, updated_at=self._now(), **fields
        )

    def _release(self, migration: _Migration, host: str | None) -> None:
        flavor = migration.flavor
        if host == migration.record.dest_compute and migration.new_flavor:
            flavor = migration.new_flavor
        if host:
            self.capacity[host] = self.capacity[host].plus(flavor)

    def _run_through(self, migration: _Migration) -> None:
        """Advance ``migration`` until it ends or waits in Nova's queue."""
        server_id = migration.record.server_id
        while not migration.record.is_final:
            before = (migration.record.status,
                      self.servers[server_id].task_state)
            self._advance(migration)
            if (migration.record.status,
                    self.servers[server_id].task_state) == before:
                break

    def _advance(self, migration: _Migration) -> None:
        record = migration.record
        if record.is_final or record.status in ("finished", "done"):
            return
        if migration.kind != "live-migration":
            self._advance_cold(migration)
            return
        if migration.aborting:
            self._cancel_live(migration)
            return
        if record.status in ("accepted", "queued"):
            if (
                self._running_live(record.source_compute or "")
                >= self.max_concurrent_live_migrations
            ):
                self._set(migration, status="queued")
                return
            migration.started = True
            self._set(migration, status="preparing")
            return
        if record.status == "preparing":
            self._set(migration, status="running")
            return
        if migration.outcome == "hang":
            return
        if migration.steps_left > 0:
            total = record.memory_total or 1
            done = record.memory_processed or 0
            done += (total - done) // migration.steps_left
            migration.steps_left -= 1
            self._set(
                migration,
                memory_processed=done,
                memory_remaining=max(1, total - done),
            )
            return
        self._finish_live(migration)

    def _finish_live(self, migration: _Migration) -> None:
        record = migration.record
        server = self.servers[record.server_id]
        if migration.outcome == "fail":
            # Nova's rollback of a failed live migration.
            self._set(migration, status="failed")
            self._release(migration, record.dest_compute)
            self._update_server(
                server.id, task_state=None, status=_status_of(server)
            )
            self._fail_action(server.id, "live-migration failed in the "
                              "fake driver")
            return
        self._release(migration, record.source_compute)
        self._set(migration, status="completed")
        self._update_server(
            server.id,
            host=record.dest_compute,
            hypervisor_hostname=record.dest_compute,
            task_state=None,
            status=_status_of(server),
        )

    def _cancel_live(self, migration: _Migration) -> None:
        """Nova's rollback of an aborted live migration."""
        self._set(migration, status="cancelled")
        self._release(migration, migration.record.dest_compute)
        server = self.servers[migration.record.server_id]
        self._update_server(
            server.id, task_state=None, status=_status_of(server)
        )

    def _advance_cold(self, migration: _Migration) -> None:
        """One step of a cold move or evacuation, through Nova's statuses
        and task states: the copy (a cold move ``migrating``, an evacuation
        ``rebuilding``) takes ``steps`` steps, then the target finishes."""
        record = migration.record
        server = self.servers[record.server_id]
        task = server.task_state or ""
        if record.status == "accepted":
            self._set(migration, status="pre-migrating")
            return
        if record.status == "pre-migrating" and migration.kind in COLD_KINDS:
            migration.steps_left -= 1
            self._set(migration, status="migrating")
            self._update_server(server.id, task_state="resize_migrating")
            return
        if record.status != "migrating" and task != "rebuilding":
            if task in _NEXT_TASK_STATE:
                self._update_server(server.id,
                                    task_state=_NEXT_TASK_STATE[task])
            else:
                self._finish_cold(migration)
            return
        if migration.steps_left > 1:
            migration.steps_left -= 1
            return
        if migration.outcome == "fail":
            self._fail(migration, server)
        elif migration.kind in COLD_KINDS:
            self._set(migration, status="post-migrating")
            self._update_server(server.id, task_state="resize_migrated")
        else:
            self._update_server(server.id,
                                task_state="rebuild_block_device_mapping")

    def _fail(self, migration: _Migration, server: models.Server) -> None:
        """A cold move's copy fails and Nova rolls it back (the server as
        it was, on its source); an evacuation's rebuild fails (ERROR)."""
        self._release(migration, migration.record.dest_compute)
        if migration.kind == "evacuation":
            self._set(migration, status="failed")
            self._update_server(server.id, task_state=None, status="ERROR",
                                vm_state="error")
        else:
            self._set(migration, status="error")
            status = _status_of(server)
            self._update_server(
                server.id, task_state=None, status=status,
                vm_state="active" if status == "ACTIVE" else "stopped")
        self._fail_action(server.id, f"{migration.kind} failed")

    def _finish_cold(self, migration: _Migration) -> None:
        record = migration.record
        server = self.servers[record.server_id]
        if migration.kind == "evacuation":
            stopping = server.task_state == "powering-off"
            stopped = stopping or server.vm_state == "stopped" or (
                microversions.supports(self.max_microversion, "2.95"))
            if stopped and not stopping:
                # Nova spawns it on the target, then stops it there.
                self._update_server(
                    server.id, host=record.dest_compute,
                    hypervisor_hostname=record.dest_compute,
                    task_state="powering-off", status="ACTIVE",
                    vm_state="active", power_state=models.POWER_STATE_RUNNING,
                )
                return
            self._release(migration, record.source_compute)
            self._set(migration, status="done")
            self._update_server(
                server.id,
                host=record.dest_compute,
                hypervisor_hostname=record.dest_compute,
                task_state=None,
                status="SHUTOFF" if stopped else "ACTIVE",
                vm_state="stopped" if stopped else "active",
                power_state=(models.POWER_STATE_SHUTDOWN if stopped
                             else models.POWER_STATE_RUNNING),
            )
            return
        self._set(migration, status="finished")
        new_flavor = migration.new_flavor
        self._update_server(
            server.id,
            host=record.dest_compute,
            hypervisor_hostname=record.dest_compute,
            task_state=None,
            status="VERIFY_RESIZE",
            vm_state="resized",
            flavor=(new_flavor.to_dict() if new_flavor else server.flavor),
        )

    def _fail_action(self, server_id: str, message: str) -> None:
        action = self.actions[server_id][0]
        event = models.ActionEvent(
            event=f"compute_{action.action}",
            result="Error",
            start_time=self._now(),
            finish_time=self._now(),
            details=message,
        )
        self.actions[server_id][0] = dataclasses.replace(
            action, message="Error", events=action.events + (event.to_dict(),)
        )

    def advance(self, steps: int = 1) -> None:
        """Move the cloud on by ``steps`` steps: what the computes still had
        to do is done, every active migration moves one step."""
        with self._lock:
            for _ in range(steps):
                pending, self._pending = self._pending, []
                for finish in pending:
                    finish()
                for migration in self.migrations:
                    self._advance(migration)

    def _later(self, finish: Callable[[], None]) -> None:
        """Have a compute do ``finish`` at the next step (at once with
        ``steps=0``)."""
        if self.steps == 0:
            finish()
        else:
            self._pending.append(finish)

    # -- the Compute interface: servers ------------------------------------

    def get_server(self, server_id: str) -> models.Server:
        with self._lock:
            self.calls["get_server"] += 1
            self.advance()
            return self._server(server_id)

    def find_server(self, ref: str) -> models.Server:
        with self._lock:
            self.calls["find_server"] += 1
            if ref in self.servers:
                return self.servers[ref]
            matches = [s for s in self.servers.values() if s.name == ref]
            if len(matches) != 1:
                raise exceptions.InvalidInput(
                    f"server {ref!r}: no server has this name or id"
                    if not matches else
                    f"server {ref!r}: {len(matches)} servers have this name"
                )
            return matches[0]

    def list_servers(self, host: str) -> list[models.Server]:
        with self._lock:
            self.calls["list_servers"] += 1
            self.advance()
            return [s for s in self.servers.values() if s.host == host]

    def list_changed_servers(self, since: str) -> list[models.Server]:
        with self._lock:
            self.calls["list_changed_servers"] += 1
            self.advance()
            return [s for s in self.servers.values()
                    if self.server_changed.get(s.id, "") >= since]

    def start_server(self, server_id: str) -> base.ActionResult:
        """Nova's ``os-start``: ``powering-on``, then ACTIVE."""
        with self._lock:
            self._write("start_server", server_id)
            self._check_state(self._server(server_id), "start", {"stopped"})
            self._update_server(server_id, task_state="powering-on")
            self._later(lambda: self._update_server(
                server_id, status="ACTIVE", vm_state="active",
                task_state=None, power_state=models.POWER_STATE_RUNNING,
            ))
            return self._record_action(server_id, "start")

    def stop_server(self, server_id: str) -> base.ActionResult:
        """Nova's ``os-stop``: ``powering-off``, then SHUTOFF."""
        with self._lock:
            self._write("stop_server", server_id)
            self._check_state(self._server(server_id), "stop",
                              {"active", "error"})
            self._update_server(server_id, task_state="powering-off")
            self._later(lambda: self._update_server(
                server_id, status="SHUTOFF", vm_state="stopped",
                task_state=None, power_state=models.POWER_STATE_SHUTDOWN,
            ))
            return self._record_action(server_id, "stop")

    @staticmethod
    def _check_state(server: models.Server, action: str,
                     vm_states: set[str], any_task: bool = False) -> None:
        """Nova's ``check_instance_state``: HTTP 409 unless the server is
        in one of ``vm_states`` with no task (or any task)."""
        if server.task_state and not any_task:
            raise exceptions.Conflict(
                f"Cannot '{action}' instance {server.id} while it is in "
                f"task_state {server.task_state}", 409
            )
        if server.vm_state not in vm_states:
            raise exceptions.Conflict(
                f"Cannot '{action}' instance {server.id} while it is in "
                f"vm_state {server.vm_state}", 409
            )

    # -- services, capacity, flavors ---------------------------------------

    def list_services(self) -> list[models.Service]:
        with self._lock:
            self.calls["list_services"] += 1
            return list(self.services.values())

    def update_service(
        self,
        service_id: str,
        *,
        disabled: bool | None = None,
        disabled_reason: str | None = None,
        forced_down: bool | None = None,
    ) -> models.Service:
        with self._lock:
            self._write("update_service", service_id)
            host = next(
                (h for h, s in self.services.items() if s.id == service_id),
                None,
            )
            if host is None:
                raise exceptions.NotFound(f"service {service_id}", 404)
            fields: dict[str, Any] = {}
            if disabled is not None:
                fields["status"] = "disabled" if disabled else "enabled"
                if not disabled:
                    fields["disabled_reason"] = None
            if disabled_reason is not None:
                fields["disabled_reason"] = disabled_reason
            if forced_down is not None:
                fields["forced_down"] = forced_down
                fields["state"] = "down" if forced_down else "up"
            self.set_service(host, **fields)
            return self.services[host]

    def host_capacities(self) -> dict[str, models.HostCapacity]:
        with self._lock:
            self.calls["host_capacities"] += 1
            return dict(self.capacity)

    def list_server_groups(self) -> list[models.ServerGroup]:
        with self._lock:
            self.calls["list_server_groups"] += 1
            return list(self.server_groups.values())

    def get_flavor(self, ref: str) -> models.Flavor:
        with self._lock:
            self.calls["get_flavor"] += 1
            for flavor in self.flavors.values():
                if ref in (flavor.id, flavor.name):
                    return flavor
            raise exceptions.NotFound(f"flavor {ref!r}: no such flavor", 404)

    # -- the Compute interface: moves --------------------------------------

    def _check_movable(self, server: models.Server, allowed: set[str]) -> None:
        if server.task_state:
            raise exceptions.Conflict(
                f"Cannot migrate instance {server.id} while it is in "
                f"task_state {server.task_state}", 409
            )
        if server.status not in allowed:
            raise exceptions.Conflict(
                f"Cannot migrate instance {server.id} while it is in "
                f"vm_state {server.vm_state}", 409
            )

    def live_migrate(
        self,
        server_id: str,
        host: str | None,
        block_migration: bool | str,
        force: bool = False,
    ) -> base.ActionResult:
        with self._lock:
            self._write("live_migrate", server_id)
            server = self._server(server_id)
            self._check_movable(server, {"ACTIVE", "PAUSED"})
            self._check_target(server, host, same_host=True)
            result = self._record_action(server_id, "live-migration")
            if host == server.host:
                self._refused_by_conductor(
                    server, "live-migration",
                    f"Unable to migrate instance ({server_id}) to current "
                    f"host ({host}).")
                return result
            behaviour = self.behaviours[server_id]
            dest = self._schedule(
                server, "live-migration", host, server.flavor_info,
                behaviour.live == "no_valid_host", force,
            )
            if dest is None:
                return result
            self._update_server(
                server_id, task_state="migrating", status="MIGRATING"
            )
            self._start(server, "live-migration", dest, behaviour.live)
            return result

    def _cold(
        self,
        server_id: str,
        host: str | None,
        action: str,
        new_flavor: models.Flavor | None = None,
    ) -> base.ActionResult:
        server = self._server(server_id)
        self._check_movable(server, {"ACTIVE", "SHUTOFF"})
        self._check_target(server, host)
        behaviour = self.behaviours[server_id]
        kind = "resize" if new_flavor else "migration"
        result = self._record_action(server_id, action)
        dest = self._schedule(server, kind, host,
                              new_flavor or server.flavor_info,
                              behaviour.cold == "no_valid_host")
        if dest is None:
            return result
        self._update_server(server_id, task_state="resize_prep",
                            status="RESIZE")
        self._start(server, kind, dest, behaviour.cold, new_flavor)
        return result

    def cold_migrate(
        self, server_id: str, host: str | None
    ) -> base.ActionResult:
        with self._lock:
            self._write("cold_migrate", server_id)
            return self._cold(server_id, host, "migrate")

    def resize(self, server_id: str, flavor_id: str) -> base.ActionResult:
        with self._lock:
            self._write("resize", server_id)
            return self._cold(
                server_id, None, "resize", self.get_flavor(flavor_id)
            )

    def _revert_failed(self, migration: _Migration) -> None:
        """ERROR while still reverting, then its task state is reset."""
        server_id = migration.record.server_id
        self._set(migration, status="error")
        self._update_server(server_id, status="ERROR", vm_state="error")
        self._fail_action(server_id, "revert failed")
        self._later(lambda: self._update_server(server_id, task_state=None))

    def _resized(self, server_id: str, action: str) -> _Migration:
        """The finished cold move of a server in VERIFY_RESIZE (409
        otherwise, as Nova's ``check_instance_state`` answers)."""
        self._check_state(self._server(server_id), action, {"resized"})
        return next(
            m for m in reversed(self.migrations)
            if m.record.server_id == server_id
            and m.record.status == "finished"
        )

    def confirm_resize(self, server_id: str) -> base.ActionResult:
        """Nova's ``confirmResize``: ``confirming``, then ``confirmed``
        and the server ACTIVE (or SHUTOFF) where it moved."""
        with self._lock:
            self._write("confirm_resize", server_id)
            migration = self._resized(server_id, "confirmResize")
            self._set(migration, status="confirming")
            self._later(lambda: self._confirmed(migration))
            return self._record_action(server_id, "confirmResize")

    def _confirmed(self, migration: _Migration) -> None:
        self._set(migration, status="confirmed")
        self._release(migration, migration.record.source_compute)
        server = self.servers[migration.record.server_id]
        running = server.power_state == models.POWER_STATE_RUNNING
        self._update_server(
            server.id,
            status="ACTIVE" if running else "SHUTOFF",
            vm_state="active" if running else "stopped",
        )

    def revert_resize(self, server_id: str) -> base.ActionResult:
        """Nova's ``revertResize``: ``reverting`` (the server in
        REVERT_RESIZE), then ``reverted`` and the server back on its
        source with its old flavor."""
        with self._lock:
            self._write("revert_resize", server_id)
            migration = self._resized(server_id, "revertResize")
            self._set(migration, status="reverting")
            self._update_server(server_id, task_state="resize_reverting",
                                status="REVERT_RESIZE")
            self._later(lambda: self._reverted(migration))
            return self._record_action(server_id, "revertResize")

    def _reverted(self, migration: _Migration) -> None:
        self._release(migration, migration.record.dest_compute)
        server = self.servers[migration.record.server_id]
        old = next(
            f for f in self.flavors.values()
            if f.id == migration.record.old_flavor
        )
        self._update_server(
            server.id,
            host=migration.record.source_compute,
            hypervisor_hostname=migration.record.source_compute,
            flavor=old.to_dict(),
        )
        self._set(migration, status="reverted")
        if self.behaviours[server.id].revert == "fail":
            # The target said reverted; then the source fails to start the
            # server again, and Nova errors both out.
            self._later(lambda: self._revert_failed(migration))
            return
        if server.power_state == models.POWER_STATE_RUNNING:
            self._update_server(server.id, task_state=None, status="ACTIVE",
                                vm_state="active")
            return
        # Nova stops a server that was stopped on its source again.
        self._update_server(server.id, task_state="powering-off",
                            status="VERIFY_RESIZE")
        self._later(lambda: self._update_server(
            server.id, task_state=None, status="SHUTOFF", vm_state="stopped"))

    def evacuate(
        self, server_id: str, host: str | None
    ) -> base.ActionResult:
        with self._lock:
            self._write("evacuate", server_id)
            server = self._server(server_id)
            # Nova's checks, in its order.
            if host and host not in self.services:
                raise exceptions.NotFound(
                    f"Compute host {host} not found.", 404)
            self._check_target(server, host)
            self._check_state(server, "evacuate",
                              {"active", "stopped", "error"}, any_task=True)
            if self.services[server.host or ""].up:
                raise exceptions.BadRequest(
                    f"Compute service of {server.host} is still in use.", 400
                )
            behaviour = self.behaviours[server_id]
            result = self._record_action(server_id, "evacuate")
            dest = self._schedule(server, "evacuation", host,
                                  server.flavor_info,
                                  behaviour.cold == "no_valid_host")
            if dest is None:
                return result
            self._update_server(server_id, task_state="rebuilding",
                                status="REBUILD")
            self._start(server, "evacuation", dest, behaviour.cold)
            return result

    # -- the Compute interface: shelving -----------------------------------

    def shelve(self, server_id: str) -> base.ActionResult:
        """Nova's default ``shelved_offload_time = 0``: shelved and
        offloaded at once (no migration record)."""
        with self._lock:
            self._write("shelve", server_id)
            server = self._server(server_id)
            if server.task_state or server.status not in (
                    "ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
                raise exceptions.Conflict(
                    f"Cannot 'shelve' instance {server_id} while it is in "
                    f"vm_state {server.vm_state}", 409
                )
            self._offload(server)
            return self._record_action(server_id, "shelve")

    def shelve_offload(self, server_id: str) -> base.ActionResult:
        with self._lock:
            self._write("shelve_offload", server_id)
            server = self._server(server_id)
            if server.status != "SHELVED":
                raise exceptions.Conflict(
                    f"Cannot 'shelveOffload' instance {server_id} while it "
                    f"is in vm_state {server.vm_state}", 409
                )
            self._offload(server)
            return self._record_action(server_id, "shelveOffload")

    def _offload(self, server: models.Server) -> None:
        if server.host:
            self.capacity[server.host] = self.capacity[server.host].plus(
                server.flavor_info)
        self._update_server(
            server.id, status="SHELVED_OFFLOADED",
            vm_state="shelved_offloaded", host=None,
            power_state=models.POWER_STATE_SHUTDOWN,
        )

    def unshelve(
        self, server_id: str, host: str | None
    ) -> base.ActionResult:
        """Back to ACTIVE on ``host`` (or the scheduler's choice); when the
        scheduler finds no host the server stays SHELVED_OFFLOADED and the
        instance action says why."""
        with self._lock:
            self._write("unshelve", server_id)
            server = self._server(server_id)
            if server.status != "SHELVED_OFFLOADED":
                raise exceptions.Conflict(
                    f"Cannot 'unshelve' instance {server_id} while it is "
                    f"in vm_state {server.vm_state}", 409
                )
            if host and host not in self.services:
                raise exceptions.BadRequest(
                    f"Compute host {host} not found", 400)
            result = self._record_action(server_id, "unshelve")
            try:
                dest = self._pick_host(server, host, server.flavor_info)
            except exceptions.NoValidHost as exc:
                self._fail_action(server_id, str(exc))
                return result
            self.capacity[dest] = self.capacity[dest].minus(
                server.flavor_info)
            self._update_server(
                server_id, status="ACTIVE", vm_state="active", host=dest,
                power_state=models.POWER_STATE_RUNNING,
            )
            return result

    # -- the Compute interface: migrations ---------------------------------

    def list_migrations(
        self,
        *,
        server_id: str | None = None,
        host: str | None = None,
        source_compute: str | None = None,
        status: str | None = None,
        migration_type: str | None = None,
        changes_since: str | None = None,
    ) -> list[models.Migration]:
        with self._lock:
            self.calls["list_migrations"] += 1
            self.advance()
            records = [m.record for m in reversed(self.migrations)]
            return [
                r for r in records
                if (server_id is None or r.server_id == server_id)
                and (host is None or host in (r.source_compute,
                                              r.dest_compute))
                and (source_compute is None
                     or r.source_compute == source_compute)
                and (status is None or r.status == status)
                and (migration_type is None
                     or r.migration_type == migration_type)
                and (changes_since is None
                     or (r.updated_at or "") >= changes_since)
            ]

    def server_migrations(self, server_id: str) -> list[models.Migration]:
        with self._lock:
            self.calls["server_migrations"] += 1
            return [
                m.record for m in self.migrations
                if m.record.server_id == server_id
                and m.kind == "live-migration"
                and m.record.status in models.LIVE_MIGRATION_ACTIVE_STATUSES
            ]

    def _live(self, server_id: str, migration_id: int, action: str,
              vm_states: set[str], allowed: frozenset[str]) -> _Migration:
        """The live migration an abort or force-complete is about, checked
        as Nova checks it: the server migrating (409), the migration its
        own (404) and in one of the ``allowed`` statuses (400)."""
        server = self._server(server_id)
        if server.task_state != "migrating" or (
                server.vm_state not in vm_states):
            raise exceptions.Conflict(
                f"Cannot '{action}' instance {server_id} while it is in "
                f"vm_state {server.vm_state}, task_state "
                f"{server.task_state}", 409
            )
        migration = next(
            (m for m in self.migrations if m.record.id == migration_id
             and m.record.server_id == server_id), None)
        if migration is None:
            raise exceptions.NotFound(
                f"Instance {server_id} has no migration {migration_id}", 404)
        if migration.record.status not in allowed:
            raise exceptions.BadRequest(
                f"Migration {migration_id} state of instance {server_id} is "
                f"{migration.record.status}. Cannot {action} while the "
                "migration is in this state.", 400
            )
        return migration

    def abort_migration(self, server_id: str, migration_id: int) -> None:
        """Nova's abort (2.65): recorded as a ``live_migration_cancel``
        action; the migration is cancelled at its next step."""
        with self._lock:
            self._write("abort_migration", server_id)
            migration = self._live(server_id, migration_id,
                                   "abort live migration",
                                   {"active", "paused"}, ABORTABLE_STATUSES)
            self._record_action(server_id, "live_migration_cancel")
            migration.aborting = True
            if self.steps == 0:
                self._run_through(migration)

    def force_complete_migration(
        self, server_id: str, migration_id: int
    ) -> None:
        """Nova's force-complete: a hanging migration completes at its
        next step; a failing one still fails."""
        with self._lock:
            self._write("force_complete_migration", server_id)
            self._server(server_id)
            try:
                migration = self._live(server_id, migration_id,
                                       "force complete", {"active"},
                                       frozenset({"running"}))
            except exceptions.NotFound as exc:
                # Nova's force-complete answers another server's
                # migration with 400, where its abort answers 404.
                raise exceptions.BadRequest(str(exc), 400) from None
            self._record_action(server_id, "live_migration_force_complete")
            if migration.outcome == "hang":
                migration.outcome = "success"
            migration.steps_left = 0
            if self.steps == 0:
                self._run_through(migration)

    # -- the Compute interface: diagnosis ----------------------------------

    def instance_action(
        self, server_id: str, request_id: str
    ) -> models.InstanceAction | None:
        with self._lock:
            self.calls["instance_action"] += 1
            return next(
                (a for a in self.actions[server_id]
                 if a.request_id == request_id),
                None,
            )

    def instance_actions(
        self, server_id: str
    ) -> list[models.InstanceAction]:
        with self._lock:
            self.calls["instance_actions"] += 1
            return list(self.actions[server_id])


def _status_of(server: models.Server) -> str:
    if server.power_state == models.POWER_STATE_PAUSED:
        return "PAUSED"
    if server.power_state == models.POWER_STATE_RUNNING:
        return "ACTIVE"
    return "SHUTOFF"
