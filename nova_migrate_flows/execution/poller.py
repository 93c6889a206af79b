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
"""One poller that watches every migration of a run.

Tasks that wait for a migration register a :class:`Watch` and block on it;
the poller alone talks to Nova: one ``GET /os-migrations`` per source host
per poll, whatever the number of migrations in flight there. It polls a host
when a migration there is expected to end (learnt from the migrations that
ended before, or from the progress Nova reports) and at least every
``poll_interval`` seconds. It enforces the completion and progress timeouts,
takes the timeout action, aborts in-flight migrations on request, and gives
throttle slots back the moment it sees a migration end.
"""

import dataclasses
import datetime
import email.utils
import threading
import time
from collections.abc import Callable

from oslo_log import log as logging

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import base, models

LOG = logging.getLogger(__name__)

#: Seconds after its expected end that a host's last migration is polled,
#: and that one with others queued behind it is.
END_MARGIN = 0.05
END_MARGIN_QUEUED = 0.3
#: How many poll intervals the poller may go without looking at a host
#: whose migrations it can foresee (queued, or running with a known end).
QUIET_FACTOR = 5
#: How long a request may go without a migration record showing up.
RECORD_TIMEOUT = 120.0
#: After this many seconds without a record in the batched poll, look the
#: server's migrations up directly (Nova filters ``changes-since`` on
#: ``updated_at``, which a brand-new record may not have yet).
RECORD_LOOKUP_AFTER = 10.0
#: How long the migrations of a host may go unread (Nova unreachable)
#: before the tasks waiting for them are told.
POLL_FAILURE_TIMEOUT = 300.0
#: Nova's clock has second resolution; a record this much older than the
#: request that made it is still ours.
CLOCK_SLACK = datetime.timedelta(seconds=2)


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The limits of one migration, in seconds (None: no limit)."""

    completion: float | None = None
    progress: float | None = None
    action: str = "abort"


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
    registered: float = dataclasses.field(default_factory=time.monotonic)
    migration: models.Migration | None = None
    running_since: float | None = None
    last_progress: tuple[int, float] | None = None
    rate: float | None = None
    next_progress_at: float = 0.0
    timed_out: str | None = None
    aborting: str | None = None
    force_completed: bool = False
    overdue_polls: int = 0
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


class MigrationPoller:
    """Watches migrations, one batched poll per source host."""

    def __init__(
        self,
        compute: base.Compute,
        *,
        poll_interval: float = 2.0,
        poll_interval_min: float = 0.2,
        progress_interval: float | None = None,
        on_progress: Callable[[Watch], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self._compute = compute
        self._interval = poll_interval
        self._interval_min = min(poll_interval_min, poll_interval)
        self._progress_interval = progress_interval
        self._on_progress = on_progress
        self._clock = clock
        self._wall = wall
        self._cond = threading.Condition()
        self._watches: dict[str, list[Watch]] = {}
        self._next_poll: dict[str, float] = {}
        self._last_poll: dict[str, float] = {}
        self._durations: dict[tuple[str, str], float] = {}
        self._by_server: dict[str, Watch] = {}
        #: When (Nova's clock, epoch seconds) the last migration of a kind
        #: ended per source host: the next queued one started then.
        self._last_end: dict[tuple[str, str], float] = {}
        #: When polls of a host began to fail, while they fail.
        self._failing_since: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Polls sent, for summaries and tests of API economy.
        self.polls = 0

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="migration-poller", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    # -- what tasks call ---------------------------------------------------

    def watch(
        self,
        server_id: str,
        host: str,
        kind: str,
        *,
        accepted_at: str | None = None,
        migration: models.Migration | None = None,
        timeouts: Timeouts | None = None,
        on_final: Callable[[Watch], None] | None = None,
    ) -> Watch:
        """Watch the migration ``accepted_at`` made, or ``migration``."""
        accepted = _http_date(accepted_at)
        since = accepted or _nova_time(migration) or _utcnow()
        watch = Watch(
            server_id=server_id,
            host=host,
            kind=kind,
            since=since - datetime.timedelta(seconds=10),
            accepted_at=accepted,
            migration_id=migration.id if migration else None,
            timeouts=timeouts or Timeouts(),
            on_final=on_final,
            registered=self._clock(),
            migration=migration,
        )
        with self._cond:
            self._watches.setdefault(host, []).append(watch)
            self._by_server[server_id] = watch
            self._schedule(host)
            self._cond.notify_all()
        return watch

    def take(self, server_id: str) -> Watch | None:
        """The watch registered for ``server_id``, handed over once."""
        with self._cond:
            return self._by_server.pop(server_id, None)

    def abort_all(self, reason: str) -> int:
        """Abort every live migration in flight; how many were asked to."""
        count = 0
        with self._cond:
            watches = [w for ws in self._watches.values() for w in ws]
        for watch in watches:
            if watch.kind == constants.LIVE_MIGRATION and not watch.resolved:
                watch.aborting = reason
                if watch.migration is not None:
                    self._abort(watch)
                count += 1
        with self._cond:
            for host in self._watches:
                self._next_poll[host] = self._clock()
            self._cond.notify_all()
        return count

    def learnt_duration(self, host: str, kind: str) -> float | None:
        return self._durations.get((host, kind)) or self._durations.get(
            ("*", kind)
        )

    # -- the loop ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                host, due = self._due()
                now = self._clock()
                if host is None or due > now:
                    self._cond.wait(None if host is None else due - now)
                    continue
                self._next_poll.pop(host, None)
            try:
                self._poll(host)
                self._failing_since.pop(host, None)
            except (exceptions.AuthenticationFailed,
                    exceptions.NotAuthorized) as exc:
                self._fail_host(host, exc)
            except exceptions.NovaUnavailable as exc:
                self._poll_failed(host, exc)
            except exceptions.NovaMigrateFlowsError as exc:
                self._fail_host(host, exc)
            except Exception as exc:  # noqa: BLE001 - keep the poller alive
                LOG.exception("Polling the migrations of %s failed", host)
                self._fail_host(
                    host, exceptions.NovaMigrateFlowsError(str(exc))
                )
            with self._cond:
                if self._watches.get(host):
                    self._schedule(host)

    def _due(self) -> tuple[str | None, float]:
        if not self._next_poll:
            return None, 0.0
        host = min(self._next_poll, key=self._next_poll.__getitem__)
        return host, self._next_poll[host]

    def _poll_failed(
        self, host: str, exc: exceptions.NovaMigrateFlowsError
    ) -> None:
        """Keep watching through a passing outage (Nova still runs the
        migrations); give up on the host's watches once it lasts."""
        now = self._clock()
        since = self._failing_since.setdefault(host, now)
        if now - since > POLL_FAILURE_TIMEOUT:
            self._fail_host(host, exc)
            return
        LOG.warning("Cannot read the migrations of %s (%s); still watching "
                    "them", host, exc)

    def _fail_host(
        self, host: str, exc: exceptions.NovaMigrateFlowsError
    ) -> None:
        with self._cond:
            watches = self._watches.pop(host, [])
        for watch in watches:
            self._resolve(watch, exc)

    def _schedule(self, host: str) -> None:
        """Decide when to poll ``host`` next (called with the lock held)."""
        now = self._clock()
        watches = [w for w in self._watches.get(host, ()) if not w.resolved]
        # When one migration of the host runs with a known end and the
        # others wait behind it, the moments below say when to look: the
        # interval only bounds how long the poller goes without looking.
        # (A request that fails behind it is seen at that end: the host's
        # slot was taken until then all the same.)
        known = (any(self._foreseen(w) for w in watches)
                 and all(self._foreseen(w) or self._waiting(w)
                         for w in watches))
        due = now + self._interval * (QUIET_FACTOR if known else 1)
        # With more than one migration of the host in Nova's hands, the
        # next one starts by itself when one ends: seeing the end a little
        # later costs nothing, and saves polls that come too early.
        margin = END_MARGIN if len(watches) <= 1 else END_MARGIN_QUEUED
        for watch in watches:
            for moment in self._moments(watch, now, margin):
                due = min(due, moment)
        earliest = self._last_poll.get(host, -1e9) + self._interval_min
        self._next_poll[host] = max(due, earliest, now)

    def _foreseen(self, watch: Watch) -> bool:
        """Whether ``watch`` runs and the poller knows when it ends."""
        if watch.migration is None or watch.aborting:
            return False
        return (watch.running_since is not None
                and self._expected_end(watch) is not None)

    @staticmethod
    def _waiting(watch: Watch) -> bool:
        """Whether ``watch`` waits behind the host's running migration:
        requested (no record seen yet, or Nova's conductor on it) or in
        the compute's queue, so it starts when that one ends (live
        migrations only: Nova runs cold moves without a queue)."""
        if watch.aborting or watch.kind != constants.LIVE_MIGRATION:
            return False
        return (watch.migration is None
                or watch.migration.status in constants.WAITING_STATUSES)

    def _moments(self, watch: Watch, now: float,
                 margin: float = 0.05) -> list[float]:
        moments = []
        if watch.aborting and watch.migration is None:
            moments.append(now)
        learnt = self.learnt_duration(watch.host, watch.kind)
        if watch.running_since is None and learnt is not None:
            # Not seen running yet: it ends this soon at the earliest (a
            # queued one later still: then the poll interval applies).
            first = watch.registered + learnt
            if first > now:
                moments.append(first)
        if watch.running_since is not None:
            expected = self._expected_end(watch)
            if expected is not None:
                if expected > now:
                    moments.append(expected + margin)
                else:
                    backoff = self._interval_min * (2 ** watch.overdue_polls)
                    moments.append(now + min(backoff, self._interval))
            for limit in (watch.timeouts.completion,):
                if limit:
                    moments.append(watch.running_since + limit)
            progress = watch.timeouts.progress
            if progress and watch.last_progress:
                moments.append(watch.last_progress[1] + progress)
            if self._wants_progress(watch):
                moments.append(watch.next_progress_at)
        return moments

    def _expected_end(self, watch: Watch) -> float | None:
        migration = watch.migration
        if (
            watch.rate
            and migration is not None
            and migration.bytes_total
            and watch.last_progress
        ):
            left = max(0, migration.bytes_total - watch.last_progress[0])
            return watch.last_progress[1] + left / watch.rate
        learnt = self.learnt_duration(watch.host, watch.kind)
        if learnt is None or watch.running_since is None:
            return None
        started = self._nova_start(watch)
        if started is not None:
            # Nova's clock to ours (NTP keeps them close; a skew only
            # costs a few more polls).
            return self._clock() - (self._wall() - (started + learnt))
        return watch.running_since + learnt

    def _wants_progress(self, watch: Watch) -> bool:
        return (
            watch.kind == constants.LIVE_MIGRATION
            and watch.migration is not None
            and watch.migration.status == "running"
            and (
                self._on_progress is not None
                or bool(watch.timeouts.progress)
            )
        )

    # -- one poll ----------------------------------------------------------

    def _poll(self, host: str) -> None:
        with self._cond:
            watches = [w for w in self._watches.get(host, ()) if not
                       w.resolved]
            previous = self._last_poll.get(host)
            self._last_poll[host] = self._clock()
        if not watches:
            return
        since = min(w.since for w in watches)
        self.polls += 1
        records = self._compute.list_migrations(
            source_compute=host, changes_since=since.isoformat()
        )
        LOG.debug("Polled the migrations of %s: %s", host, ", ".join(
            f"{r.id} {r.status}" for r in records) or "none")
        now = self._clock()
        ended: list[Watch] = []
        for watch in watches:
            record = self._match(watch, records)
            if record is None and now - watch.registered > \
                    RECORD_LOOKUP_AFTER:
                record = self._match(watch, self._compute.list_migrations(
                    server_id=watch.server_id, source_compute=host))
            if record is None:
                if now - watch.registered > RECORD_TIMEOUT:
                    self._resolve(watch, exceptions.MigrationFailed(
                        f"Nova accepted the request to move {watch.server_id}"
                        f" but recorded no migration in {RECORD_TIMEOUT:.0f} "
                        "s", watch.server_id,
                    ))
                continue
            self._update(watch, record, now)
            if watch.resolved:
                ended.append(watch)
        # A migration that ended let the next one out of Nova's queue: one
        # first seen running now most likely started half-way since the
        # last poll.
        gap = 0.0
        if ended and previous is not None:
            gap = min(self._interval, now - previous)
        for watch in watches:
            if not watch.resolved:
                self._check(watch, now, gap)
        with self._cond:
            self._watches[host] = [
                w for w in self._watches.get(host, ()) if not w.resolved
            ]
            if not self._watches[host]:
                del self._watches[host]

    def _match(
        self, watch: Watch, records: list[models.Migration]
    ) -> models.Migration | None:
        if watch.migration_id is not None:
            return next(
                (r for r in records if r.id == watch.migration_id),
                None,
            )
        mine = [
            r for r in records
            if r.server_id == watch.server_id
            and (r.migration_type or watch.kind) == watch.kind
            and (
                watch.accepted_at is None
                or (models.parse_time(r.created_at) or watch.since)
                >= watch.accepted_at - CLOCK_SLACK
            )
        ]
        if not mine:
            return None
        record = max(mine, key=lambda r: r.id)
        watch.migration_id = record.id
        if watch.aborting:
            watch.migration = record
            self._abort(watch)
        return record

    def _update(
        self, watch: Watch, record: models.Migration, now: float
    ) -> None:
        previous = watch.migration
        if previous is not None and previous.memory_total is not None:
            record = record.with_progress(previous)
        watch.migration = record
        if (record.status in constants.RUNNING_STATUSES
                and watch.running_since is None):
            watch.running_since = now
            # A display wants progress at once; a progress timeout only
            # needs it now and then.
            watch.next_progress_at = now if self._on_progress else (
                now + (self._progress_interval or self._interval))
        if record.status in constants.SUCCESS_STATUSES.get(watch.kind, ()):
            self._learn(watch, record)
            if watch.timed_out and not watch.force_completed:
                # Its abort came too late: the server moved all the same.
                watch.force_completed = True
                watch.timed_out += " (it completed while being aborted)"
            self._resolve(watch, None)
        elif record.status in constants.FAILURE_STATUSES:
            if watch.timed_out:
                error: exceptions.NovaMigrateFlowsError = (
                    self._timeout_error(watch)
                )
            elif watch.aborting:
                error = exceptions.MigrationFailed(
                    f"migration {record.id} of {watch.server_id} was aborted"
                    f" ({watch.aborting})", watch.server_id, record.id,
                    record.status,
                )
            else:
                error = exceptions.MigrationFailed(
                    f"migration {record.id} of {watch.server_id} ended "
                    f"{record.status}", watch.server_id, record.id,
                    record.status,
                )
            self._resolve(watch, error)

    def _nova_start(self, watch: Watch) -> float | None:
        """When Nova started the migration (Nova's clock): when it was
        created, or when the one it queued behind ended."""
        if watch.migration is None:
            return None
        created = _epoch(watch.migration.created_at)
        if created is None:
            return None
        return max(created, self._last_end.get((watch.host, watch.kind),
                                                created))

    def _learn(self, watch: Watch, record: models.Migration) -> None:
        """Learn how long migrations take, from Nova's own timestamps."""
        ended = _epoch(record.updated_at)
        started = self._nova_start(watch)
        key = (watch.host, watch.kind)
        if ended is not None:
            self._last_end[key] = max(ended, self._last_end.get(key, ended))
        if started is None or ended is None or watch.timed_out:
            return
        took = max(0.0, ended - started)
        for duration_key in (key, ("*", watch.kind)):
            old = self._durations.get(duration_key)
            self._durations[duration_key] = took if old is None else (
                0.5 * old + 0.5 * took
            )

    def _check(self, watch: Watch, now: float, gap: float) -> None:
        """Progress, timeouts and estimates of a migration still going."""
        if watch.running_since is None:
            return
        if watch.running_since == now:  # first seen running in this poll
            watch.running_since = now - gap / 2
        expected = self._expected_end(watch)
        if expected is not None and expected <= now:
            watch.overdue_polls += 1
        if self._wants_progress(watch) and now >= watch.next_progress_at:
            self._sample_progress(watch, now)
        if watch.timed_out:
            return
        limits = watch.timeouts
        reason = None
        if limits.completion and now - watch.running_since > limits.completion:
            reason = f"completion timeout of {limits.completion:.0f} s"
        elif (
            limits.progress
            and watch.last_progress is not None
            and now - watch.last_progress[1] > limits.progress
        ):
            reason = f"no progress for {limits.progress:.0f} s"
        if reason is not None:
            self._take_timeout_action(watch, reason)

    def _sample_progress(self, watch: Watch, now: float) -> None:
        interval = self._progress_interval or self._interval
        watch.next_progress_at = now + interval
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

    def _take_timeout_action(self, watch: Watch, reason: str) -> None:
        action = watch.timeouts.action
        watch.timed_out = reason
        LOG.warning(
            "Live migration %s of server %s hit its %s: %s",
            watch.migration_id, watch.server_id, reason,
            {"abort": "aborting it", "force_complete": "forcing it to "
             "complete", "fail": "leaving it running"}[action],
        )
        if action == "abort":
            watch.aborting = reason
            if self._abort(watch):
                return
        elif action == "force_complete":
            try:
                self._compute.force_complete_migration(
                    watch.server_id, watch.migration_id or 0
                )
                watch.force_completed = True
                return
            except exceptions.ComputeError as exc:
                LOG.warning("Could not force migration %s to complete: %s",
                            watch.migration_id, exc)
        # Left running, on purpose or because Nova refused the action: the
        # task hears of the timeout now, the slot comes back at the end.
        self._resolve(watch, self._timeout_error(watch), keep=True)

    def _abort(self, watch: Watch) -> bool:
        """Ask Nova to abort; whether it took the request (when the answer
        was lost, the task's revert looks at Nova and aborts again)."""
        try:
            self._compute.abort_migration(
                watch.server_id, watch.migration_id or 0
            )
        except (exceptions.BadRequest, exceptions.Conflict,
                exceptions.NotFound, exceptions.AmbiguousWrite) as exc:
            LOG.info("Migration %s of %s could not be aborted (it may be "
                     "ending): %s", watch.migration_id, watch.server_id, exc)
            return False
        return True

    def _timeout_error(self, watch: Watch) -> exceptions.MigrationTimeout:
        status = watch.migration.status if watch.migration else None
        return exceptions.MigrationTimeout(
            f"live migration {watch.migration_id} of {watch.server_id} hit "
            f"its {watch.timed_out} (action {watch.timeouts.action}; "
            f"migration {status})",
            watch.server_id, watch.migration_id, status,
        )

    def _resolve(
        self,
        watch: Watch,
        error: exceptions.NovaMigrateFlowsError | None,
        keep: bool = False,
    ) -> None:
        """Hand the outcome to the waiting task.

        With ``keep`` the poller goes on watching the migration (Nova still
        runs it) so that its throttle slot comes back only when it ends.
        """
        watch.error = error
        watch.done.set()
        if keep:
            return
        watch.resolved = True
        if watch.on_final is not None:
            watch.on_final(watch)


def _epoch(value: str | None) -> float | None:
    parsed = models.parse_time(value)
    return parsed.timestamp() if parsed is not None else None


def _http_date(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def _nova_time(migration: models.Migration | None) -> datetime.datetime | None:
    if migration is None:
        return None
    return models.parse_time(migration.updated_at or migration.created_at)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
