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
"""Nova's migration records, as the poller reads them.

:class:`Records` sends the reads: one ``GET /os-migrations`` per poll (for
the source hosts due then), a direct look-up of a server's migrations when
its record is slow to show up, and ``GET /servers/{id}/migrations`` for the
progress of a running live migration. It matches records to watches,
updates a watch from its record (handing the outcome over when the
migration ends), and teaches :class:`Durations` how long migrations take.
"""

import datetime
from collections.abc import Callable, Mapping, Sequence

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import base, models
from nova_migrate_flows.execution.watch import Watch

#: How long a request may go without a migration record showing up.
RECORD_TIMEOUT = 120.0
#: After this many seconds without a record in the batched poll, look the
#: server's migrations up directly (Nova filters ``changes-since`` on
#: ``updated_at``, which a brand-new record may not have yet).
RECORD_LOOKUP_AFTER = 10.0
#: Nova's clock has second resolution; a record this much older than the
#: request that made it is still ours.
CLOCK_SLACK = datetime.timedelta(seconds=2)
#: Nova's timestamps (and the Date header) have second resolution: a record
#: up to this much older than the request that made it is surely ours;
#: between this and CLOCK_SLACK, only clocks that disagree make it so.
CLOCK_RESOLUTION = datetime.timedelta(seconds=1)


class Durations:
    """How long migrations take, learnt from Nova's own timestamps."""

    def __init__(self) -> None:
        #: The running average per (source host, kind), and per ("*", kind).
        self.average: dict[tuple[str, str], float] = {}
        #: When (Nova's clock, epoch seconds) the last migration of a kind
        #: ended per source host: the next queued one started then.
        self.last_end: dict[tuple[str, str], float] = {}

    def learnt(self, host: str, kind: str) -> float | None:
        """How long a migration of ``kind`` from ``host`` takes, if known
        (from any host when none of ``host`` ended yet)."""
        return self.average.get((host, kind)) or self.average.get(
            ("*", kind)
        )

    def nova_start(self, watch: Watch) -> float | None:
        """When Nova started the migration (Nova's clock): when it was
        created, or when the one it queued behind ended."""
        if watch.migration is None:
            return None
        created = _epoch(watch.migration.created_at)
        if created is None:
            return None
        return max(created, self.last_end.get((watch.host, watch.kind),
                                              created))

    def learn(self, watch: Watch, record: models.Migration) -> None:
        """Learn from ``record``, the last of a migration that completed."""
        ended = _epoch(record.updated_at)
        started = self.nova_start(watch)
        key = (watch.host, watch.kind)
        if ended is not None:
            self.last_end[key] = max(ended, self.last_end.get(key, ended))
        if started is None or ended is None or watch.timed_out:
            return
        took = max(0.0, ended - started)
        for duration_key in (key, ("*", watch.kind)):
            old = self.average.get(duration_key)
            self.average[duration_key] = took if old is None else (
                0.5 * old + 0.5 * took
            )


class Records:
    """Reads migration records and brings watches up to date with them.

    :param progress_every: seconds between two progress samples of a
        running live migration (a display wants one at once, too)
    :param on_progress: called with a watch after each progress sample
    """

    def __init__(
        self,
        compute: base.Compute,
        durations: Durations,
        *,
        progress_every: float,
        on_progress: Callable[[Watch], None] | None,
    ):
        self._compute = compute
        self._durations = durations
        #: The records watches have followed: each is one watch's.
        self._followed: set[int] = set()
        self._progress_every = progress_every
        self._on_progress = on_progress

    def read(self, watching: Mapping[str, Sequence[Watch]]
             ) -> dict[str, list[models.Migration]]:
        """By source host, the migrations of the hosts of ``watching`` that
        changed since the oldest of their watches was requested: one read,
        however many watches (of one host, filtered by Nova; of several,
        every migration that changed since, sorted here)."""
        since = min(w.since for ws in watching.values() for w in ws)
        if len(watching) == 1:
            (host,) = watching
            return {host: self._compute.list_migrations(
                source_compute=host, changes_since=since.isoformat())}
        found: dict[str, list[models.Migration]] = {h: [] for h in watching}
        for record in self._compute.list_migrations(
                changes_since=since.isoformat()):
            if record.source_compute in found:
                found[record.source_compute].append(record)
        return found

    def find(
        self, watch: Watch, records: list[models.Migration], now: float
    ) -> models.Migration | None:
        """The record of ``watch``: among ``records``, else (after a while)
        among its server's migrations. A request Nova never recorded fails
        its watch in the end."""
        doubted = now - watch.registered <= RECORD_LOOKUP_AFTER
        record = self.match(watch, records, doubted)
        if record is None and not doubted:
            record = self.match(watch, self._compute.list_migrations(
                server_id=watch.server_id, source_compute=watch.host))
        if record is None and now - watch.registered > RECORD_TIMEOUT:
            watch.resolve(exceptions.MigrationFailed(
                f"Nova accepted the request to move {watch.server_id} but "
                f"recorded no migration in {RECORD_TIMEOUT:.0f} s",
                watch.server_id,
            ))
        return record

    def match(
        self, watch: Watch, records: list[models.Migration],
        doubted: bool = False,
    ) -> models.Migration | None:
        """The record of ``watch`` among ``records``: the one it follows,
        or the newest of its server and kind made since its request (which
        it follows from then on) that no other watch followed: a retry
        within the clock's slack must not take the record of the try
        before, which Nova made just before it recorded the retry's. With
        ``doubted``, a record that had ended already and was made more
        than the clock's resolution before the request is left aside too
        (most likely an earlier move's: one an interrupted run stopped
        just before this one, resuming it, asked again, whose own record
        Nova has not made yet)."""
        if watch.migration_id is not None:
            return next(
                (r for r in records if r.id == watch.migration_id),
                None,
            )
        mine = [
            r for r in records
            if r.server_id == watch.server_id
            and r.id not in self._followed
            and (r.migration_type or watch.kind) == watch.kind
            and (
                watch.accepted_at is None
                or (models.parse_time(r.created_at) or watch.since)
                >= watch.accepted_at - CLOCK_SLACK
            )
        ]
        if doubted:
            mine = [r for r in mine if not _earlier(watch, r)]
        if not mine:
            return None
        record = max(mine, key=lambda r: r.id)
        watch.migration_id = record.id
        self._followed.add(record.id)
        return record

    def update(
        self, watch: Watch, record: models.Migration, now: float
    ) -> None:
        """Bring ``watch`` up to date with its ``record``, seen at ``now``;
        resolve it if the migration ended."""
        previous = watch.migration
        if previous is not None and previous.memory_total is not None:
            record = record.with_progress(previous)
        watch.migration = record
        if record.status in constants.COMPUTE_STATUSES:
            watch.hand_over()
        if (record.status in constants.RUNNING_STATUSES
                and watch.running_since is None):
            self.started(watch, now)
        if record.status in constants.SUCCESS_STATUSES.get(watch.kind, ()):
            self._durations.learn(watch, record)
            if watch.timed_out and not watch.force_completed:
                # Its abort came too late: the server moved all the same.
                watch.force_completed = True
                watch.timed_out += " (it completed while being aborted)"
            watch.resolve(None)
        elif record.status in constants.FAILURE_STATUSES:
            watch.resolve(self._failure(watch, record))

    def started(self, watch: Watch, now: float) -> None:
        """The migration of ``watch`` started running at ``now``: its
        timeouts count from then."""
        watch.hand_over()
        watch.running_since = now
        # A display wants progress at once; a progress timeout only needs
        # it now and then.
        watch.next_progress_at = now if self._on_progress else (
            now + self._progress_every)

    @staticmethod
    def first_seen_running(watch: Watch, now: float, gap: float) -> None:
        """A migration first seen running in the poll at ``now`` started
        half-way through the ``gap`` before it (on average)."""
        if watch.running_since == now:
            watch.running_since = now - gap / 2

    def sample_progress(self, watch: Watch, now: float) -> None:
        """Read the progress of the running live migration of ``watch``,
        and the rate at which it copies data."""
        watch.next_progress_at = now + self._progress_every
        try:
            records = self._compute.server_migrations(watch.server_id)
        except exceptions.NotFound:
            return
        record = next(
            (r for r in records if r.id == watch.migration_id), None
        )
        if record is None or watch.migration is None:
            return
        watch.migration = watch.migration.with_progress(record)
        done = record.bytes_processed
        if done is not None:
            if watch.last_progress is None or done > watch.last_progress[0]:
                if watch.last_progress is not None:
                    elapsed = now - watch.last_progress[1]
                    if elapsed > 0:
                        watch.rate = (done - watch.last_progress[0]) / elapsed
                watch.last_progress = (done, now)
        if self._on_progress is not None:
            self._on_progress(watch)

    @staticmethod
    def _failure(
        watch: Watch, record: models.Migration
    ) -> exceptions.MigrationFailed:
        """The error of a migration that ended badly."""
        if watch.timed_out:
            return watch.timeout_error()
        if watch.aborting:
            aborted = (exceptions.MigrationStopped if watch.stopped
                       else exceptions.MigrationFailed)
            return aborted(
                f"migration {record.id} of {watch.server_id} was aborted"
                f" ({watch.aborting})", watch.server_id, record.id,
                record.status,
            )
        return exceptions.MigrationFailed(
            f"migration {record.id} of {watch.server_id} ended "
            f"{record.status}", watch.server_id, record.id, record.status,
        )


def _epoch(value: str | None) -> float | None:
    """One of Nova's timestamps in epoch seconds."""
    parsed = models.parse_time(value)
    return parsed.timestamp() if parsed is not None else None


def _earlier(watch: Watch, record: models.Migration) -> bool:
    """Whether ``record`` had ended already and was made more than the
    clock's resolution before the request of ``watch``: a record of that
    request only looks so if Nova's clocks disagree."""
    created = models.parse_time(record.created_at)
    return (watch.accepted_at is not None and created is not None
            and record.status in constants.ENDED_STATUSES
            and created < watch.accepted_at - CLOCK_RESOLUTION)
