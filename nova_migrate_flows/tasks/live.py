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
"""Live migration of one server: ``os-migrateLive``, then the poller."""

from typing import Any

from oslo_log import log as logging
from taskflow.types import failure as ft

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import aborts
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import moves

LOG = logging.getLogger(__name__)


class LiveMigrateServer(moves.StartMove):
    """Asks Nova to live-migrate the server (or adopts its live migration).

    ``--force`` is sent only with a target host and only at microversion
    2.67 or earlier (Nova removed it in 2.68): it bypasses the scheduler's
    checks of the target host.

    Reversion strategy: abort the live migration if Nova still runs it
    (Nova's own rollback then keeps the server on its source); a completed
    live migration is not undone.
    """

    move_kind = constants.LIVE

    def send(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        host: str | None,
    ) -> compute_base.ActionResult:
        force = runtime.request.force and bool(host)
        return runtime.compute.live_migrate(
            server.id, host, entry["block_migration"], force=force
        )

    def undo(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        started: dict[str, Any],
        failures: list[ft.Failure],
    ) -> None:
        if runtime.conf.migration.timeout_action == "fail" and any(
            f.check(exceptions.MigrationTimeout) for f in failures
        ):
            LOG.warning("Leaving the timed-out live migration of %s running"
                        " (timeout_action = fail)", server_id)
            return
        for migration in runtime.compute.server_migrations(server_id):
            LOG.warning("Aborting live migration %s of server %s",
                        migration.id, server_id)
            try:
                aborts.abort_live_migration(runtime, runtime.compute,
                                            server_id, migration.id)
            except (exceptions.BadRequest, exceptions.Conflict,
                    exceptions.NotFound) as exc:
                LOG.warning("Live migration %s of %s could not be aborted: "
                            "%s", migration.id, server_id, exc)


class WaitForLiveMigration(moves.WaitForMove):
    """Waits for the live migration to end, under its timeouts.

    The completion timeout scales with the data to copy, like Nova's
    ``live_migration_completion_timeout`` (seconds per GiB, with a floor);
    the progress timeout fires when no more data is copied for a while. On
    a timeout the configured ``timeout_action`` is taken.

    Reversion strategy: N/A (the start task aborts the migration).
    """

    move_kind = constants.LIVE
