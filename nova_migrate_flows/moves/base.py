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
"""What a kind of move says about itself.

A kind of move is one way Nova moves a server to another host: a live
migration, a cold migration, a resize, an evacuation, or one a third party
adds (say, shelve-offload then unshelve onto another host). One
:class:`MoveKind` object per kind says everything the flows, the checks
and the verifications need to know about it:

* how it starts, how it is waited for, what settles it before it is
  verified (an evacuated server is restarted) and what finishes it after
  (a cold move is confirmed): the names of task plugins (entry points of
  ``nova_migrate_flows.tasks``), each built with ``server_id=`` and
  ``kind=`` (this kind's name);
* which throttle pool its moves take a slot of;
* whether Nova records a migration for it, and of which ``migration_type``;
* which server states it can move, and which state a moved server must be
  in when it is verified.

A kind is registered as an entry point of ``nova_migrate_flows.moves``
under its name; :mod:`nova_migrate_flows.moves.registry` finds it. Its
name is what the plan says a server undergoes (the ``action`` of the
JSON output).
"""

from typing import ClassVar

from nova_migrate_flows import constants
from nova_migrate_flows.compute import models


class MoveKind:
    """One kind of move. Subclass it, set the class attributes, and
    override the methods whose default does not fit."""

    #: The kind's name: its entry point's name, and the plan's action.
    name: ClassVar[str]
    #: One line for listings.
    summary: ClassVar[str] = ""
    #: The throttle pool (``live`` or ``cold``) its moves take a slot of:
    #: Nova runs live migrations per source host under its own limit, and
    #: the other moves under the operator's cold limit.
    throttle_pool: ClassVar[str]
    #: Nova's ``migration_type`` of the record the move makes, or None
    #: when Nova records no migration for it (shelve and unshelve).
    migration_type: ClassVar[str | None]
    #: Task plugins that start the move and wait for its end.
    start_task: ClassVar[str]
    wait_task: ClassVar[str]
    #: A task plugin run after the wait and before the verifications (it
    #: reads ``moved[server]`` and provides ``final[server]``), if any.
    settle_task: ClassVar[str | None] = None
    #: A task plugin run after the verifications passed (same contract),
    #: if any: what a failed verification can still undo comes before it.
    finish_task: ClassVar[str | None] = None
    #: The server statuses this kind moves.
    movable_statuses: ClassVar[frozenset[str]]
    #: Whether the source host's compute service must be down (an
    #: evacuation) rather than up (every other move).
    source_must_be_down: ClassVar[bool] = False

    @property
    def records_migration(self) -> bool:
        """Whether Nova writes a migration record for this kind of move."""
        return self.migration_type is not None

    def microversion(self, target_host: str | None) -> str | None:
        """The compute API microversion a move of this kind (onto
        ``target_host``, if given) needs beyond the tool's oldest supported
        one, or None. A cloud older than that is refused before anything
        changes."""
        return None

    def refusal(self, server: models.Server) -> str | None:
        """Why this kind cannot move ``server`` (its state), or None."""
        if server.status in self.movable_statuses:
            return None
        allowed = " or ".join(sorted(self.movable_statuses))
        return f"{server.status}: {self.name} moves only {allowed} servers"

    def adopts(self, server: models.Server) -> bool:
        """Whether ``server`` is busy with a move of this kind already,
        which a run then adopts and watches instead of starting another."""
        return False

    def busy(self, server: models.Server) -> bool:
        """Whether Nova is moving ``server`` this way right now."""
        return bool(server.task_state)

    def end_state_error(self, before: models.Server,
                        after: models.Server) -> str | None:
        """What is wrong with the state of the moved server when it is
        verified, or None. By default it must have the status and power
        state it had before."""
        if after.status != before.status:
            return f"status {after.status}, was {before.status}"
        return power_state_error(before, after)

    def verified_key(self, server_id: str) -> str:
        """The store key the verifications read: what the wait (or the
        settle task, if any) provides."""
        what = "final" if self.settle_task else "moved"
        return constants.server_key(what, server_id)

    def outcome_key(self, server_id: str) -> str:
        """The store key the server's outcome reads: what the last task of
        the move provides."""
        what = "final" if self.settle_task or self.finish_task else "moved"
        return constants.server_key(what, server_id)


def power_state_error(before: models.Server,
                      after: models.Server) -> str | None:
    """A changed power state, in words, or None."""
    if before.power_state is not None and \
            after.power_state != before.power_state:
        return f"power state {after.power_state}, was {before.power_state}"
    return None
