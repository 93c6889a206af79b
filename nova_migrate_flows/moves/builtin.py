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
"""The four kinds of move Nova offers: live migration, cold migration,
resize and evacuation."""

from nova_migrate_flows import constants
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import throttle
from nova_migrate_flows.moves import base

#: A server's task states while Nova resizes or cold-migrates it.
RESIZE_TASK_STATES = frozenset({
    "resize_prep", "resize_migrating", "resize_migrated", "resize_finish",
})


class LiveMigration(base.MoveKind):
    """Nova's live migration (``os-migrateLive``): the server keeps running.
    """

    name = constants.LIVE
    summary = "Live migration: the server keeps running while it moves."
    throttle_pool = throttle.LIVE
    migration_type = constants.LIVE_MIGRATION
    start_task = "live-migrate"
    wait_task = "wait-live-migration"
    movable_statuses = frozenset({"ACTIVE", "PAUSED"})

    def refusal(self, server: models.Server) -> str | None:
        if server.status in self.movable_statuses or (
                server.status == "MIGRATING" and self.busy(server)):
            return None
        return f"{server.status}: only ACTIVE or PAUSED servers move live"

    def adopts(self, server: models.Server) -> bool:
        return self.busy(server)

    def busy(self, server: models.Server) -> bool:
        return server.task_state == "migrating"

    def end_state_error(self, before: models.Server,
                        after: models.Server) -> str | None:
        was = status_before_live_migration(before)
        if after.status != was:
            return f"status {after.status}, was {was}"
        return base.power_state_error(before, after)


class _ColdMove(base.MoveKind):
    """A move through Nova's resize machinery: the server is stopped,
    moved, and waits in VERIFY_RESIZE to be confirmed (or reverted)."""

    throttle_pool = throttle.COLD
    finish_task = "confirm"
    movable_statuses = frozenset({"ACTIVE", "SHUTOFF"})
    #: The verb of the refusal message.
    verb: str

    def refusal(self, server: models.Server) -> str | None:
        if server.status in self.movable_statuses:
            return None
        return (f"{server.status}: only ACTIVE or SHUTOFF servers can be "
                f"{self.verb}")

    def busy(self, server: models.Server) -> bool:
        return (server.task_state in RESIZE_TASK_STATES
                or server.status == "VERIFY_RESIZE")

    def end_state_error(self, before: models.Server,
                        after: models.Server) -> str | None:
        if after.status != "VERIFY_RESIZE":
            return f"status {after.status}, expected VERIFY_RESIZE"
        return base.power_state_error(before, after)


class ColdMigration(_ColdMove):
    """Nova's cold migration (``migrate``), confirmed once verified."""

    name = constants.COLD
    summary = ("Cold migration: stopped, moved, confirmed once verified; "
               "the power state is kept.")
    migration_type = "migration"
    start_task = "cold-migrate"
    wait_task = "wait-cold-migration"
    verb = "cold-migrated"


class Resize(_ColdMove):
    """Nova's resize to another flavor, confirmed once verified."""

    name = constants.RESIZE
    summary = "Resize to another flavor, confirmed once verified."
    migration_type = "resize"
    start_task = "resize"
    wait_task = "wait-resize"
    verb = "resized"


class Evacuation(base.MoveKind):
    """Nova's evacuation: the server of a failed host is rebuilt on another
    host, then started again if it ran before."""

    name = constants.EVACUATE
    summary = ("Evacuation of a failed host's server: rebuilt elsewhere, "
               "restarted if it ran.")
    throttle_pool = throttle.COLD
    migration_type = "evacuation"
    start_task = "evacuate"
    wait_task = "wait-evacuation"
    settle_task = "restart"
    source_must_be_down = True
    movable_statuses = frozenset({"ACTIVE", "SHUTOFF", "ERROR", "PAUSED"})

    def refusal(self, server: models.Server) -> str | None:
        if server.status in self.movable_statuses:
            return None
        return f"{server.status}: Nova cannot evacuate a server in this state"

    def busy(self, server: models.Server) -> bool:
        return (server.task_state or "").startswith("rebuild")

    def end_state_error(self, before: models.Server,
                        after: models.Server) -> str | None:
        wanted = {"ACTIVE", "SHUTOFF"} if before.status == "ERROR" \
            else {before.status}
        if after.status not in wanted:
            return f"status {after.status}, was {before.status}"
        return None


def status_before_live_migration(before: models.Server) -> str:
    """The status a server had before its live migration, also for one
    read while a migration (then adopted) was running."""
    if before.status != "MIGRATING":
        return before.status
    if before.power_state == models.POWER_STATE_PAUSED:
        return "PAUSED"
    return "ACTIVE"
