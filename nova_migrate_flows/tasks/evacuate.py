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
"""Evacuation of a server off a failed host, and its restart."""

from typing import Any

from oslo_log import log as logging
from taskflow.types import failure as ft

from nova_migrate_flows import constants
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import base, cold, moves

LOG = logging.getLogger(__name__)


class EvacuateServer(moves.StartMove):
    """Asks Nova to rebuild the server of a failed host on another host.

    Reversion strategy: N/A: Nova cannot undo an evacuation (the server's
    disk on the failed host is deleted when its nova-compute comes back);
    a failure is reported with where the server is.
    """

    move_kind = constants.EVACUATE

    def send(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        host: str | None,
    ) -> compute_base.ActionResult:
        return runtime.compute.evacuate(server.id, host)

    def undo(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        started: dict[str, Any],
        failures: list[ft.Failure],
    ) -> None:
        LOG.warning("The evacuation of server %s cannot be undone", server_id)


class WaitForEvacuation(moves.WaitForMove):
    """Waits until Nova rebuilt the server on its new host.

    Reversion strategy: N/A (waiting changes nothing).
    """

    move_kind = constants.EVACUATE


class RestartServer(moves.MoveTask):
    """Starts an evacuated server that was running before (Nova 2.95 and
    later leave evacuated servers SHUTOFF).

    Reversion strategy: N/A (starting a server that ran before is what the
    operator wants even if a later step fails).
    """

    move_kind = constants.EVACUATE

    def __init__(self, server_id: str, kind: str | None = None,
                 **kwargs: Any):
        super().__init__(
            server_id, kind,
            name=constants.server_key("restart", server_id),
            provides=constants.server_key("final", server_id),
            rebind={"moved": constants.server_key("moved", server_id)},
            **kwargs,
        )

    def execute(
        self, runtime: runtime_mod.Runtime, moved: dict[str, Any]
    ) -> dict[str, Any]:
        result = base.Moved.from_dict(moved)
        after = result.after_server
        if result.not_moved or after is None:
            return moved
        after = cold.restore_power(
            runtime, result.before_server, after,
            float(runtime.conf.migration.operation_timeout),
        )
        return dict(moved, after=after.to_dict())
