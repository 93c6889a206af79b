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
"""The :class:`Watch`: one migration a task waits for, as the poller sees it.

A task registers a watch with the poller and blocks in :meth:`Watch.wait`;
the poller's units fill in what they learn of the migration (its record,
progress, timeouts, aborts) and hand the outcome over with
:meth:`Watch.resolve`.
"""

import dataclasses
import datetime
import threading
import time
from collections.abc import Callable

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution.timeouts import Timeouts


@dataclasses.dataclass
class Watch:
    """A migration a task waits for."""

    server_id: str
    host: str
    kind: str
    since: datetime.datetime
    accepted_at: datetime.datetime | None = None
    migration_id: int | None = None
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    on_final: Callable[["Watch"], None] | None = None
    #: Called once, when Nova's compute is seen to hold the migration
    #: (queued, running or done: Nova's conductor is through with it).
    on_handed: Callable[["Watch"], None] | None = None
    #: Called once, a moment after Nova's notification says the live
    #: migration succeeded, when its record is read later
    #: (:attr:`confirm_at`).
    on_succeeded: Callable[["Watch"], None] | None = None
    registered: float = dataclasses.field(default_factory=time.monotonic)
    migration: models.Migration | None = None
    running_since: float | None = None
    last_progress: tuple[int, float] | None = None
    rate: float | None = None
    next_progress_at: float = 0.0
    timed_out: str | None = None
    aborting: str | None = None
    #: Set when the abort is the run's stop (not a timeout).
    stopped: bool = False
    #: Set (by the thread that sent it) when Nova refused an abort.
    abort_refused: bool = False
    #: The migration's status when Nova refused its abort.
    refused_in: str | None = None
    #: When (the poller's clock) Nova last took an abort of the migration,
    #: and how many it took: one a compute lost is sent again.
    abort_taken_at: float | None = None
    aborts_taken: int = 0
    force_completed: bool = False
    overdue_polls: int = 0
    #: Nova's notifications said the move ended (the poller then reads its
    #: record at once, and again soon until the record says so too).
    end_notified: bool = False
    #: When (the poller's clock) the record of a live migration that Nova
    #: said succeeded is read at the latest: reads of such ends are
    #: gathered, and sooner when the run needs them.
    confirm_at: float | None = None
    #: Nova's compute was seen to hold the migration.
    handed: bool = False
    error: exceptions.NovaMigrateFlowsError | None = None
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    resolved: bool = False

    def wait(
        self,
        should_stop: Callable[[], bool] | None = None,
        slice_s: float = 0.5,
    ) -> models.Migration:
        """Block until the migration ends; its last record, or raise."""
        while not self.done.wait(slice_s):
            if should_stop is not None and should_stop():
                break
        if self.error is not None:
            raise self.error
        if self.migration is None or not self.done.is_set():
            raise exceptions.Interrupted(
                f"stopped waiting for the migration of {self.server_id}"
            )
        return self.migration

    def hand_over(self) -> None:
        """Nova's compute holds the migration (said once)."""
        if self.handed:
            return
        self.handed = True
        if self.on_handed is not None:
            self.on_handed(self)

    def resolve(
        self,
        error: exceptions.NovaMigrateFlowsError | None,
        keep: bool = False,
    ) -> None:
        """Hand the outcome to the waiting task.

        With ``keep`` the poller goes on watching the migration (Nova still
        runs it) so that its throttle slot comes back only when it ends.
        """
        self.error = error
        self.done.set()
        if keep:
            return
        self.resolved = True
        if self.on_final is not None:
            self.on_final(self)

    def timeout_error(self) -> exceptions.MigrationTimeout:
        """The error of a migration that hit one of its timeouts."""
        status = self.migration.status if self.migration else None
        return exceptions.MigrationTimeout(
            f"live migration {self.migration_id} of {self.server_id} hit "
            f"its {self.timed_out} (action {self.timeouts.action}; "
            f"migration {status})",
            self.server_id, self.migration_id, status,
        )
