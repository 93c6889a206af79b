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
"""Shelve-offload a server, then unshelve it onto another host.

Nova has no migration for this: the server is shelved (its disk saved as an
image), offloaded from its host, and unshelved onto the target host (Nova's
compute API 2.91), or where the scheduler chooses. Nova writes no migration
record, so the kind says so and the tasks watch the server itself.
"""

import time
from typing import Any

from oslo_log import log as logging

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.execution import throttle, writes
from nova_migrate_flows.moves import base as moves_base
from nova_migrate_flows.tasks import base
from nova_migrate_flows.tasks import moves as move_tasks

LOG = logging.getLogger(__name__)

KIND = "shelve-unshelve"
SHELVED = ("SHELVED", "SHELVED_OFFLOADED")


class ShelveUnshelve(moves_base.MoveKind):
    """Shelve-offload, then unshelve onto another host."""

    name = KIND
    summary = ("Shelve-offload, then unshelve onto another host (Nova API "
               "2.91); Nova records no migration.")
    throttle_pool = throttle.COLD
    migration_type = None
    start_task = "acme-shelve-unshelve"
    wait_task = "acme-wait-unshelved"
    # An unshelved server runs: only running servers keep their state.
    movable_statuses = frozenset({"ACTIVE"})

    def microversion(self, target_host: str | None) -> str | None:
        # Unshelving onto a given host came with Nova 25 (Yoga).
        return "2.91" if target_host else None

    def busy(self, server: models.Server) -> bool:
        return (server.task_state or "").startswith(("shelving",
                                                     "unshelving"))


class ShelveAndUnshelveServer(move_tasks.StartTask):
    """Shelves the server, offloads it, and unshelves it onto the target.

    Each write is sent once (a lost answer is looked into first); a resumed
    run goes on from where the server is.

    Reversion strategy: a server this run left shelved is unshelved onto
    its source host again; a server that runs on its new host is left there.
    """

    move_kind = KIND

    def execute(self, runtime: runtime_mod.Runtime, server_id: str,
                plan: dict[str, Any], target: dict[str, Any]
                ) -> dict[str, Any]:
        entry = plan[server_id]
        server = models.Server.from_dict(entry["server"])
        # The plan's entry names the groups whose members move one at a
        # time (hard anti-affinity): the slot waits for them too.
        not_started = self.given_up(target) or self.take_slot(
            runtime, server, entry)
        if not_started is not None:
            return not_started
        try:
            request_id = self._move(runtime, server, target["host"])
        except BaseException:
            runtime.throttle.release(server_id)
            raise
        return {"source": server.host, "requested_host": target["host"],
                "request_id": request_id, "started_at": time.time()}

    def _move(self, runtime: runtime_mod.Runtime, server: models.Server,
              host: str | None) -> str | None:
        """Shelve, offload and unshelve; the unshelve's request id."""
        timeout = float(runtime.conf.migration.operation_timeout)
        current = runtime.compute.get_server(server.id)
        if current.status not in SHELVED and not current.task_state:
            writes.send_once(
                runtime, f"the shelve of {server.id}",
                lambda: runtime.compute.shelve(server.id),
                lambda: _showing(runtime, server.id, "shelving", SHELVED),
            )
        current = move_tasks.wait_for_server(
            runtime, server.id, lambda s: s.status in SHELVED
            and not s.task_state, timeout, "shelved")
        if current.status == "SHELVED":
            writes.send_once(
                runtime, f"the offload of {server.id}",
                lambda: runtime.compute.shelve_offload(server.id),
                lambda: _showing(runtime, server.id, "shelving_offloading",
                                 ("SHELVED_OFFLOADED",)),
            )
            move_tasks.wait_for_server(
                runtime, server.id, lambda s: s.status == "SHELVED_OFFLOADED"
                and not s.task_state, timeout, "offloaded")
        answer = writes.send_once(
            runtime, f"the unshelve of {server.id}",
            lambda: runtime.compute.unshelve(server.id, host),
            lambda: _showing(runtime, server.id, "unshelving", ("ACTIVE",)),
        )
        return getattr(answer, "request_id", None)

    def revert(self, runtime: runtime_mod.Runtime, server_id: str,
               plan: dict[str, Any], result: Any, **kwargs: Any) -> None:
        runtime.throttle.release(server_id)
        if isinstance(result, dict) and result.get("not_moved"):
            return
        before = models.Server.from_dict(plan[server_id]["server"])
        timeout = float(runtime.conf.migration.operation_timeout)
        current = move_tasks.wait_for_server(
            runtime, server_id, lambda s: not s.task_state, timeout,
            "out of its shelve or unshelve")
        if current.status not in SHELVED or before.status in SHELVED:
            return
        LOG.warning("Reverting the %s of server %s: unshelving it onto %s",
                    KIND, server_id, before.host)
        if current.status == "SHELVED":
            writes.send_once(
                runtime, f"the unshelve of {server_id}",
                lambda: runtime.compute.unshelve(server_id, None),
                lambda: _showing(runtime, server_id, "unshelving",
                                 ("ACTIVE",)),
            )
        else:
            writes.send_once(
                runtime, f"the unshelve of {server_id} onto {before.host}",
                lambda: runtime.compute.unshelve(server_id, before.host),
                lambda: _showing(runtime, server_id, "unshelving",
                                 ("ACTIVE",)),
            )
        move_tasks.wait_for_server(
            runtime, server_id, lambda s: s.status == "ACTIVE"
            and not s.task_state, timeout, "ACTIVE again")


class WaitForUnshelve(move_tasks.WaitTask):
    """Waits until the unshelved server runs on its new host.

    Nova writes no migration record for it: the server itself is watched,
    and a failed unshelve is explained with Nova's instance action.

    Reversion strategy: N/A (waiting changes nothing; the start task
    unshelves a server left shelved).
    """

    move_kind = KIND

    def execute(self, runtime: runtime_mod.Runtime, server_id: str,
                plan: dict[str, Any], started: dict[str, Any]
                ) -> dict[str, Any]:
        entry = plan[server_id]
        skipped = self.not_moved(server_id, entry, started)
        if skipped is not None:
            return skipped
        try:
            after = move_tasks.wait_for_server(
                runtime, server_id,
                lambda s: s.status != "SHELVED" and not s.task_state,
                float(runtime.conf.migration.operation_timeout),
                "out of its unshelve")
        finally:
            runtime.throttle.release(server_id)
        if after.status == "SHELVED_OFFLOADED":
            why = move_tasks.diagnose(runtime, server_id,
                                      started.get("request_id"))
            message = (f"the unshelve of {server_id} onto "
                       f"{started.get('requested_host') or 'a host'} "
                       f"failed; Nova: {why or 'no reason given'}")
            if why and "no valid host" in why.lower():
                raise exceptions.NoValidHost(message)
            raise exceptions.MigrationFailed(message, server_id)
        return base.Moved(
            server_id=server_id, action=entry["action"],
            source=started["source"], before=entry["server"],
            after=after.to_dict(),
            requested_host=started.get("requested_host"),
            request_id=started.get("request_id"),
            started_at=started.get("started_at"),
        ).to_dict()


def _showing(runtime: runtime_mod.Runtime, server_id: str, task_state: str,
             statuses: tuple[str, ...]) -> models.Server | None:
    """The server, if Nova took the write: it shows task_state, or one
    of statuses with no task_state."""
    server = runtime.compute.get_server(server_id)
    if server.task_state == task_state or (
            server.status in statuses and not server.task_state):
        return server
    return None
