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
"""Cold moves: cold migration and resize, then confirm (or revert)."""

from typing import Any

from oslo_log import log as logging
from taskflow.types import failure as ft

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.execution import writes
from nova_migrate_flows.moves import builtin
from nova_migrate_flows.tasks import base, moves

LOG = logging.getLogger(__name__)

#: The statuses of a migration whose confirmation Nova took.
CONFIRMED_STATUSES = frozenset({"confirming", "confirmed"})


class _ColdMove(moves.StartMove):
    def undo(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        started: dict[str, Any],
        failures: list[ft.Failure],
    ) -> None:
        server = moves.wait_for_server(
            runtime, server_id, lambda s: s.task_state not in
            builtin.RESIZE_TASK_STATES, float(runtime.conf.migration.
                                      operation_timeout),
            "out of its resize",
        )
        if server.status != "VERIFY_RESIZE":
            LOG.warning("Server %s is %s on %s: no resize to revert",
                        server_id, server.status, server.host)
            return
        LOG.warning("Reverting the resize of server %s (back to %s)",
                    server_id, started["source"])

        def reverting() -> models.Server | None:
            server = runtime.compute.get_server(server_id)
            if server.task_state == "resize_reverting" or (
                    server.status != "VERIFY_RESIZE"):
                return server
            return None

        writes.send_once(
            runtime, f"the revert of the resize of {server_id}",
            lambda: runtime.compute.revert_resize(server_id), reverting,
        )
        back = moves.wait_for_server(
            runtime, server_id,
            lambda s: s.status != "VERIFY_RESIZE" and not s.task_state,
            float(runtime.conf.migration.operation_timeout),
            "back from its reverted resize",
        )
        if back.status == "ERROR":
            # Reported, not raised: a revert failure would stop the moves
            # of every other server of the flow. The server's outcome says
            # it was not left safe.
            LOG.error("The revert of the resize of server %s failed: Nova "
                      "left it in ERROR on %s", server_id, back.host)


class ColdMigrateServer(_ColdMove):
    """Asks Nova to cold-migrate the server (or adopts its migration).

    Reversion strategy: revert the resize (Nova moves the server back to its
    source) once the migration reached VERIFY_RESIZE. A revert that Nova
    fails (the server in ERROR) is logged, not raised: the server's
    outcome reports it failed and not left safe, and the other servers go
    on.
    """

    move_kind = constants.COLD

    def send(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        host: str | None,
    ) -> compute_base.ActionResult:
        return runtime.compute.cold_migrate(server.id, host)


class ResizeServer(_ColdMove):
    """Asks Nova to resize the server to the new flavor.

    Reversion strategy: revert the resize once it reached VERIFY_RESIZE (the
    server goes back to its old flavor and host). A revert that Nova fails
    (the server in ERROR) is logged, not raised: the server's outcome
    reports it failed and not left safe, and the other servers go on.
    """

    move_kind = constants.RESIZE

    def send(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        host: str | None,
    ) -> compute_base.ActionResult:
        return runtime.compute.resize(server.id, entry["flavor_id"])


class WaitForColdMigration(moves.WaitForMove):
    """Waits until the cold migration reaches VERIFY_RESIZE.

    Reversion strategy: N/A (the start task reverts the resize).
    """

    move_kind = constants.COLD


class WaitForResize(moves.WaitForMove):
    """Waits until the resize reaches VERIFY_RESIZE.

    Reversion strategy: N/A (the start task reverts the resize).
    """

    move_kind = constants.RESIZE


class ConfirmMove(moves.MoveTask):
    """Confirms the verified resize or cold migration and restores the
    server's power state (unless ``--no-confirm``).

    Reversion strategy: N/A (a confirmed resize cannot be undone; this task
    runs only after every verification passed).
    """

    def __init__(self, server_id: str, kind: str | None = None,
                 **kwargs: Any):
        super().__init__(
            server_id, kind,
            name=constants.server_key("confirm", server_id),
            provides=constants.server_key("final", server_id),
            rebind={"moved": constants.server_key("moved", server_id)},
            **kwargs,
        )

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        moved: dict[str, Any],
        request: dict[str, Any],
    ) -> dict[str, Any]:
        result = base.Moved.from_dict(moved)
        if result.not_moved:
            return moved
        if not request_mod.MoveRequest.from_dict(request).confirm:
            return dict(moved, note="left in VERIFY_RESIZE (--no-confirm): "
                        "confirm or revert it with 'openstack server resize "
                        "confirm|revert'")
        server_id = result.server_id
        timeout = float(runtime.conf.migration.operation_timeout)
        migration = result.migration_record

        def confirmed() -> models.Migration | None:
            if migration is None:
                return None
            return next((
                record for record in runtime.compute.list_migrations(
                    server_id=server_id)
                if record.id == migration.id
                and record.status in CONFIRMED_STATUSES
            ), None)

        writes.send_once(
            runtime, f"the confirmation of the resize of {server_id}",
            lambda: runtime.compute.confirm_resize(server_id), confirmed,
        )
        after = moves.wait_for_server(
            runtime, server_id,
            lambda s: s.status != "VERIFY_RESIZE" and not s.task_state,
            timeout, "out of VERIFY_RESIZE",
        )
        after = restore_power(runtime, result.before_server, after, timeout)
        return dict(moved, after=after.to_dict())


def restore_power(
    runtime: runtime_mod.Runtime,
    before: models.Server,
    after: models.Server,
    timeout: float,
) -> models.Server:
    """Start or stop ``after`` so that it runs as ``before`` did."""
    was_running = before.status in ("ACTIVE", "PAUSED") or (
        before.power_state == models.POWER_STATE_RUNNING
    )
    if was_running and after.status == "SHUTOFF":
        LOG.info("Starting server %s again", after.id)
        writes.send_once(
            runtime, f"the start of server {after.id}",
            lambda: runtime.compute.start_server(after.id),
            lambda: _powering(runtime, after.id, "powering-on", "ACTIVE"),
        )
        return moves.wait_for_server(
            runtime, after.id,
            lambda s: s.status == "ACTIVE" and not s.task_state,
            timeout, "ACTIVE",
        )
    if not was_running and before.status == "SHUTOFF" and \
            after.status == "ACTIVE":
        LOG.info("Stopping server %s again", after.id)
        writes.send_once(
            runtime, f"the stop of server {after.id}",
            lambda: runtime.compute.stop_server(after.id),
            lambda: _powering(runtime, after.id, "powering-off", "SHUTOFF"),
        )
        return moves.wait_for_server(
            runtime, after.id,
            lambda s: s.status == "SHUTOFF" and not s.task_state,
            timeout, "SHUTOFF",
        )
    if after.status == "ERROR":
        raise exceptions.VerificationFailed(
            f"server {after.id} is in ERROR on {after.host}"
        )
    return after


def _powering(
    runtime: runtime_mod.Runtime, server_id: str, task_state: str,
    status: str,
) -> models.Server | None:
    """The server, if Nova took the start or stop: it is powering on or
    off (``task_state``), or has the ``status`` it leads to already."""
    server = runtime.compute.get_server(server_id)
    if server.task_state == task_state or (
            server.status == status and not server.task_state):
        return server
    return None
