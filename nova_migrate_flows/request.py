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
"""What an operator asked for: one move request, plain and serialisable.

A request is stored with the run (so ``resume`` and a conductor rebuild the
same flows) and is handed to every task; the command-line options that
override configuration are already folded into it.
"""

import dataclasses
import enum
from typing import Any, Self

from oslo_config import cfg

from nova_migrate_flows import constants, exceptions


class Operation(enum.StrEnum):
    """The operations this tool performs; values are the command names."""

    LIVE_MIGRATE = "live-migrate"
    HOST_EVACUATE_LIVE = "host-evacuate-live"
    HOST_SERVERS_MIGRATE = "host-servers-migrate"
    RESIZE = "resize"
    HOST_EVACUATE = "host-evacuate"
    #: One server, with the kind of move the request names.
    MOVE = "move"
    #: ``host-maintenance enter``: empty hosts and leave them marked.
    MAINTENANCE_ENTER = "host-maintenance-enter"
    #: ``host-maintenance exit``: bring hosts back, servers too if asked.
    MAINTENANCE_EXIT = "host-maintenance-exit"
    #: ``host-maintenance roll``: enter, hook, exit, batch after batch.
    MAINTENANCE_ROLL = "host-maintenance-roll"

    @property
    def is_host_operation(self) -> bool:
        """Whether the operation empties its hosts (a drain)."""
        return self in (
            Operation.HOST_EVACUATE_LIVE,
            Operation.HOST_SERVERS_MIGRATE,
            Operation.HOST_EVACUATE,
            Operation.MAINTENANCE_ENTER,
        )


@dataclasses.dataclass(frozen=True)
class MoveRequest:
    """One operation with all its settings."""

    operation: str
    hosts: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    target_host: str | None = None
    block_migration: str = "auto"
    force: bool = False
    flavor: str | None = None
    confirm: bool = True
    max_concurrent: int = 1
    max_concurrent_cold: int = 1
    max_concurrent_total: int = 32
    pipeline_depth: int = 2
    stopped_servers: str = "cold-migrate"
    #: What a live host drain does with servers Nova does not live-migrate
    #: (``skip``, or the name of a kind of move).
    non_live_servers: str = "skip"
    candidate_hosts: tuple[str, ...] = ()
    enable_after: bool = False
    stop_on_failure: bool = False
    force_down: bool = False
    dry_run: bool = False
    #: The kind of move of a ``move`` request (a ``nova_migrate_flows.moves``
    #: entry point's name).
    kind: str | None = None
    #: ``host-maintenance``: the operator's reason, kept in the marker.
    reason: str | None = None
    #: ``host-maintenance exit`` and ``roll``: return the servers the
    #: ``enter`` run moved away.
    move_back: bool = False
    #: ``host-maintenance roll``: hosts per batch, the hook's command (for
    #: the ``run-command`` hook task) and how long to wait for a host's
    #: compute service to come up after its hook.
    batch: int = 1
    hook: str | None = None
    wait_up: float = 600.0

    @property
    def op(self) -> Operation:
        return Operation(self.operation)

    @property
    def targets(self) -> list[str | None]:
        """Target hosts to try in turn (None: Nova's scheduler chooses)."""
        if self.target_host:
            return [self.target_host]
        if self.candidate_hosts:
            return list(self.candidate_hosts)
        return [None]

    @property
    def block_migration_value(self) -> bool | str:
        return {"true": True, "false": False}.get(self.block_migration,
                                                  "auto")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("hosts", "servers", "candidate_hosts"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


def build_request(
    conf: cfg.ConfigOpts, operation: Operation, **given: Any
) -> MoveRequest:
    """A request from configuration, with the given values on top.

    ``given`` holds what the command line (or an embedding service) set;
    None means "not given". Raises InvalidInput for values out of range.
    """
    values: dict[str, Any] = {
        "operation": operation.value,
        "block_migration": conf.migration.block_migration,
        "max_concurrent": conf.drain.max_concurrent_live_migrations,
        "max_concurrent_cold": conf.drain.max_concurrent_cold_migrations,
        "max_concurrent_total": conf.drain.max_concurrent_total,
        "pipeline_depth": conf.drain.pipeline_depth,
        "stopped_servers": conf.drain.stopped_servers,
        "non_live_servers": conf.drain.non_live_servers,
        "candidate_hosts": tuple(conf.drain.candidate_hosts),
        "enable_after": conf.drain.enable_after,
        "stop_on_failure": conf.drain.stop_on_failure,
        "wait_up": conf.maintenance.wait_up,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    for name in ("hosts", "servers", "candidate_hosts"):
        values[name] = tuple(values.get(name) or ())
    if values["max_concurrent"] < 1:
        raise exceptions.InvalidInput(
            f"--max-concurrent {values['max_concurrent']}: must be 1 or "
            "more (live migrations at once per source host)"
        )
    target = values.get("target_host")
    if target and target in values["hosts"]:
        raise exceptions.InvalidInput(
            f"--target-host {target}: it is one of the hosts being emptied; "
            "choose another host"
        )
    if operation is Operation.MOVE and not values.get("kind"):
        raise exceptions.InvalidInput(
            "--kind: name the kind of move (see 'nova-migrate-flow "
            "list-tasks')"
        )
    if operation is Operation.MOVE and values["kind"] == constants.RESIZE:
        raise exceptions.InvalidInput(
            "--kind resize: a resize needs the new flavor; use "
            "'nova-migrate-flow resize SERVER FLAVOR'"
        )
    if operation is Operation.MAINTENANCE_ENTER:
        # Entering maintenance moves every server it can: live for the
        # running ones, cold for the stopped ones; an emptied host stays
        # disabled until ``host-maintenance exit``.
        values["stopped_servers"] = "cold-migrate"
        values["enable_after"] = False
    if operation is Operation.MAINTENANCE_ROLL and \
            values.setdefault("batch", 1) < 1:
        raise exceptions.InvalidInput(
            f"--batch {values['batch']}: must be 1 or more (hosts in "
            "maintenance at once)"
        )
    if values["wait_up"] <= 0:
        raise exceptions.InvalidInput(
            f"--wait-up {values['wait_up']}: must be more than 0 seconds"
        )
    if len(set(values["hosts"])) != len(values["hosts"]):
        raise exceptions.InvalidInput(
            "HOST: a host is given twice: " + " ".join(values["hosts"])
        )
    return MoveRequest(**values)
