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
"""The outcome of one server: migrated (and verified), failed or skipped."""

import time
from typing import Any

from oslo_log import log as logging

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)

class ServerOutcome(base.BaseTask):
    """Reports what happened to the server, and where it is now.

    A server is reported ``migrated`` only here, after every verification
    passed; a failed server is looked up so the report says where it is,
    and that it was not left safe when Nova left it in ERROR.

    Reversion strategy: N/A (reporting changes nothing).
    """

    def __init__(self, server_id: str, moved_key: str, **kwargs: Any):
        super().__init__(
            name=constants.server_key("outcome", server_id),
            provides=constants.server_key("outcome", server_id),
            rebind={"moved": moved_key},
            inject={"server_id": server_id},
            **kwargs,
        )

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        plan: dict[str, Any],
        moved: dict[str, Any],
    ) -> dict[str, Any]:
        entry = plan[server_id]
        result = base.Moved.from_dict(moved)
        outcome = new_outcome(entry)
        if result.not_moved:
            outcome["reason"] = result.not_moved
            outcome["stopped"] = result.stopped
            if result.failed and result.stopped:
                # Its migration was aborted because of the interruption:
                # it did not move, and is safe where it was.
                outcome["destination"] = _where(
                    self._read(runtime, server_id))
                outcome["reason"] = (
                    f"{constants.INTERRUPTED}: its migration was aborted "
                    f"({runtime.stop_reason}); it is on "
                    f"{outcome['destination']}"
                )
            elif result.failed:
                outcome["status"] = constants.ServerStatus.FAILED
                server = self._read(runtime, server_id)
                outcome["destination"] = _where(server)
                if server is not None and server.status == "ERROR":
                    # A failed move Nova could not undo (a revert that
                    # failed, a failed evacuation): not left safe.
                    outcome["reason"] = (
                        f"{result.not_moved}; NOT left safe: it is in ERROR "
                        f"on {server.host} (see 'openstack server event "
                        f"list {server_id}')"
                    )
                LOG.error("Server %s (%s) FAILED: %s; it is now on %s",
                          outcome["name"], server_id, outcome["reason"],
                          outcome["destination"])
                runtime.server_failed()
            else:
                outcome["status"] = constants.ServerStatus.SKIPPED
        else:
            after = result.after_server
            migration = result.migration_record
            outcome.update(
                status=constants.ServerStatus.MIGRATED,
                destination=after.host if after else None,
                migration_id=migration.id if migration else None,
                duration_s=round(time.time() - result.started_at, 1)
                if result.started_at else None,
                reason=result.note or "; ".join(entry.get("notes") or ())
                or "",
            )
            LOG.info("Server %s (%s) migrated %s -> %s and verified",
                     outcome["name"], server_id, outcome["source"],
                     outcome["destination"])
        runtime.record_outcome(outcome)
        return outcome

    def _read(self, runtime: runtime_mod.Runtime,
              server_id: str) -> models.Server | None:
        """The server as Nova has it now; None if it no longer exists."""
        try:
            return runtime.compute.get_server(server_id)
        except exceptions.NotFound:
            return None


def _where(server: models.Server | None) -> str:
    """Where a server is, as an outcome's destination says."""
    if server is None:
        return "GONE (the server no longer exists)"
    return f"{server.host} ({server.status})"


def new_outcome(entry: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a planned server before anything happened to it."""
    server = entry["server"]
    return {
        "server": server["id"],
        "name": server.get("name"),
        "source": server.get("host"),
        "destination": None,
        "action": entry.get("action"),
        "status": constants.ServerStatus.SKIPPED,
        "reason": entry.get("skip_reason") or "",
        "duration_s": None,
        "migration_id": None,
        "stopped": False,
    }
