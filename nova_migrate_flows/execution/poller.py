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
the poller alone talks to Nova about them: one ``GET /os-migrations`` per
poll, whatever the number of migrations in flight, for the source host due
then and every other host due within :data:`GATHER` seconds of it.
:class:`MigrationPoller` coordinates: its thread polls each host when the
:class:`~nova_migrate_flows.execution.schedule.Schedule` says (less and less
often while the host's migration records show no change, as often again
once one changes, a migration is added or an abort is sent), brings the
host's watches up to date with
:class:`~nova_migrate_flows.execution.migrations.Records`, checks them against
their :class:`Timeouts` and takes the timeout action, has in-flight
migrations aborted on request (on the
:class:`~nova_migrate_flows.execution.aborts.AbortLanes`, never on its own
thread; again if the migration still runs a while after Nova took the
abort), and gives throttle slots back the moment it sees a migration end.

Told by Nova's notifications that a live migration succeeded, it can give
the slot back at once and read the record later (``confirm_within``): the
successes told meanwhile are read together, and at once when nothing else
of the run is moving or when a source host's next moves wait for them
(``starved``).
"""

import datetime
import email.utils
import functools
import threading
import time
from collections.abc import Callable

from oslo_log import log as logging

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import base, models
from nova_migrate_flows.execution import (
    aborts,
    migrations,
    notifications,
    schedule,
    writes,
)
from nova_migrate_flows.execution import timeouts as timeouts_mod
from nova_migrate_flows.execution.timeouts import Timeouts
from nova_migrate_flows.execution.watch import Watch

LOG = logging.getLogger(__name__)

#: How long the migrations of a host may go unread (Nova unreachable)
#: before the tasks waiting for them are told.
POLL_FAILURE_TIMEOUT = 300.0
#: Hosts due within this many seconds of each other are polled together,
#: in one read (the first waits for the last).
GATHER = 0.3
#: Seconds after Nova's notification of a move's end that its host is
#: polled: Nova sends the end of a live migration just before it saves the
#: record completed, and the ends of other hosts that come meanwhile are
#: read with it.
END_NOTIFIED_DELAY = 0.3
#: Seconds after Nova took an abort that a migration still running is
#: aborted again (twice as long after each further abort): Nova's compute
#: drops an abort that comes as it starts the migration.
ABORT_RETRY_AFTER = 30.0


class MigrationPoller:
    """Watches migrations: one batched read per poll, for every source
    host due then.

    :param writer: the run that sends the aborts (its options and its
        hook before each write)
    :param poll_interval_max: the longest time between two polls of a
        host whose migrations show no change (None: ``poll_interval``, no
        backing off)
    :param gather: hosts due within this many seconds of each other are
        polled in one read
    :param foresee: whether to poll when a migration is expected to end
        (not while Nova's notifications say when they end)
    :param abort_retry_after: seconds after Nova took an abort that a
        migration still abortable is aborted again
    :param confirm_within: the longest the record of a live migration that
        Nova's notification said succeeded waits to be read (None: read at
        once, as every other end told)
    :param starved: whether moves of a source host wait for the records
        of its ended ones to be read (their lanes hold them): those are
        read at once
    """

    def __init__(
        self,
        compute: base.Compute,
        *,
        writer: writes.Writer,
        poll_interval: float = 2.0,
        poll_interval_min: float = 0.2,
        poll_interval_max: float | None = None,
        progress_interval: float | None = None,
        on_progress: Callable[[Watch], None] | None = None,
        gather: float = GATHER,
        foresee: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        abort_retry_after: float = ABORT_RETRY_AFTER,
        confirm_within: float | None = None,
        starved: Callable[[str], bool] = lambda host: False,
    ):
        self._compute = compute
        self._confirm_within = confirm_within
        self._starved = starved
        self._abort_retry_after = abort_retry_after
        self._writer = writer
        self._gather = gather
        self._clock = clock
        self._durations = migrations.Durations()
        self._schedule = schedule.Schedule(
            self._durations,
            interval=poll_interval,
            interval_min=poll_interval_min,
            interval_max=poll_interval_max,
            report_progress=on_progress is not None,
            foresee=foresee,
            clock=clock,
            wall=wall,
        )
        self._records = migrations.Records(
            compute,
            self._durations,
            progress_every=progress_interval or poll_interval,
            on_progress=on_progress,
        )
        self._aborts = aborts.AbortLanes()
        self._cond = threading.Condition()
        self._watches: dict[str, list[Watch]] = {}
        self._next_poll: dict[str, float] = {}
        self._last_poll: dict[str, float] = {}
        #: Per host: what its last poll read (id, status and update time
        #: of each record), and how many polls in a row read the same.
        self._seen: dict[str, frozenset[tuple[int, str, str | None]]] = {}
        self._quiet: dict[str, int] = {}
        self._by_server: dict[str, Watch] = {}
        #: When polls of a host began to fail, while they fail.
        self._failing_since: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Why every live migration in flight is being aborted (the run
        #: stops), once :meth:`abort_all` was called.
        self._aborting_all: str | None = None
        #: When to call ``on_succeeded`` of watches whose success Nova
        #: told.
        self._releases: list[tuple[float, Watch]] = []
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
        """Stop polling, once the aborts asked for are sent."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._aborts.shutdown()

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
        on_handed: Callable[[Watch], None] | None = None,
        on_succeeded: Callable[[Watch], None] | None = None,
    ) -> Watch:
        """Watch the migration ``accepted_at`` made, or ``migration``;
        ``on_final`` is called when it ends, ``on_handed`` once Nova's
        compute is seen to hold it, ``on_succeeded`` when Nova's
        notification says it succeeded and its record is read later."""
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
            on_handed=on_handed,
            on_succeeded=on_succeeded,
            registered=self._clock(),
            migration=migration,
        )
        with self._cond:
            self._watches.setdefault(host, []).append(watch)
            self._by_server[server_id] = watch
            self._quiet.pop(host, None)
            self._reschedule(host)
            self._cond.notify_all()
            aborting = self._aborting_all
        if aborting is not None and kind == constants.LIVE_MIGRATION:
            # Requested as the run stopped: in flight as well.
            self._stop_and_abort(watch, aborting)
        return watch

    def notified(self, server_id: str, event_type: str,
                 ended: bool = True) -> bool:
        """Nova's notification ``event_type`` says the move of
        ``server_id`` started (its timeouts count from now: its record is
        read when one is due) or ``ended`` (its host's records are read
        :data:`END_NOTIFIED_DELAY` later, with those of the hosts due
        within ``gather``; a live migration that succeeded gives its slot
        back now and is read within ``confirm_within``, see
        :meth:`_confirm_when_needed`). False when no move of that server
        is watched."""
        with self._cond:
            watch = next((w for watches in self._watches.values()
                          for w in watches
                          if w.server_id == server_id and not w.resolved),
                         None)
            if watch is None:
                return False
            now = self._clock()
            if not ended:
                LOG.debug("Nova notified %s for %s", event_type, server_id)
                if watch.running_since is None:
                    self._records.started(watch, now)
                    self._reschedule(watch.host)
                    self._cond.notify_all()
                return True
            watch.end_notified = True
            self._quiet.pop(watch.host, None)
            within = self._deferral(watch, event_type)
            if within is None:
                LOG.debug("Nova notified %s for %s: polling %s now",
                          event_type, server_id, watch.host)
                self._poll_at(watch.host, now + END_NOTIFIED_DELAY)
                self._cond.notify_all()
                return True
            watch.confirm_at = now + within
            self._poll_at(watch.host, watch.confirm_at)
            # Its slot comes back once Nova is through with it: the next
            # request, sent as Nova saves the record and cleans up, slowed
            # that down (B1: a quarter of a second more of Nova idle per
            # source host).
            self._releases.append((now + END_NOTIFIED_DELAY, watch))
            LOG.debug("Nova notified %s for %s: its record is read within "
                      "%.0f s", event_type, server_id, within)
            self._confirm_when_needed(watch.host)
            self._cond.notify_all()
            return True

    def _deferral(self, watch: Watch, event_type: str) -> float | None:
        """How long the record of ``watch``, whose end Nova just told with
        ``event_type``, may wait to be read: ``confirm_within`` for a live
        migration that succeeded and is not being aborted; None (read it
        now) for any other end."""
        if (watch.kind == constants.LIVE_MIGRATION
                and watch.aborting is None
                and event_type in notifications.SUCCEEDED_EVENTS):
            return self._confirm_within
        return None

    def _give_back(self, watches: list[Watch]) -> None:
        """Call ``on_succeeded`` of ``watches`` (their slots come back);
        then read their ends at once if their hosts starve."""
        for watch in watches:
            if watch.on_succeeded is not None:
                watch.on_succeeded(watch)
        with self._cond:
            for host in sorted({w.host for w in watches}):
                self._confirm_when_needed(host)

    def _poll_at(self, host: str, moment: float) -> None:
        """Poll ``host`` at ``moment`` at the latest (lock held)."""
        self._next_poll[host] = min(self._next_poll.get(host, moment),
                                    moment)

    def _confirm_when_needed(self, host: str | None = None) -> None:
        """Read the records of every live migration whose success Nova
        told and whose read waits (one read serves them all), in
        :data:`END_NOTIFIED_DELAY`: when no other move of the run is still
        going (nothing else would come to share the read), or when
        ``host``'s next moves wait for them (lock held)."""
        waiting = [w for ws in self._watches.values() for w in ws
                   if w.confirm_at is not None and not w.resolved]
        if not waiting:
            return
        idle = all(w.end_notified for ws in self._watches.values()
                   for w in ws if not w.resolved)
        if not idle and (host is None or not self._starved(host)):
            return
        soon = self._clock() + END_NOTIFIED_DELAY
        for watch in waiting:
            if watch.confirm_at is not None and watch.confirm_at > soon:
                watch.confirm_at = soon
            self._poll_at(watch.host, soon)

    def watching(self) -> bool:
        """Whether a move is still being watched (its end not seen)."""
        with self._cond:
            return any(not w.resolved for watches in self._watches.values()
                       for w in watches)

    def take(self, server_id: str) -> Watch | None:
        """The watch registered for ``server_id``, handed over once."""
        with self._cond:
            return self._by_server.pop(server_id, None)

    def abort_all(self, reason: str) -> int:
        """Abort every live migration in flight, and any watched from now
        on (a request sent as the run stopped); how many were asked to."""
        count = 0
        with self._cond:
            self._aborting_all = reason
            watches = [w for ws in self._watches.values() for w in ws]
        for watch in watches:
            if (watch.kind == constants.LIVE_MIGRATION and not watch.resolved
                    and watch.confirm_at is None):
                self._stop_and_abort(watch, reason)
                count += 1
        with self._cond:
            now = self._clock()
            for host, host_watches in self._watches.items():
                self._next_poll[host] = now
                for watch in host_watches:
                    if watch.confirm_at is not None:
                        watch.confirm_at = now
            self._cond.notify_all()
        return count

    def _stop_and_abort(self, watch: Watch, reason: str) -> None:
        """Mark ``watch`` stopped for ``reason`` and abort its migration
        once Nova has one (at once if its record is known already)."""
        watch.aborting = reason
        watch.stopped = True
        if watch.migration is not None:
            self._abort(watch)

    def learnt_duration(self, host: str, kind: str) -> float | None:
        return self._durations.learnt(host, kind)

    # -- the loop ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = self._clock()
                released = [w for at, w in self._releases if at <= now]
                self._releases = [(at, w) for at, w in self._releases
                                  if at > now]
                hosts, due = self._due()
                if not released and (not hosts or due > now):
                    wake = [at for at, _ in self._releases]
                    if hosts:
                        wake.append(due)
                    self._cond.wait(min(wake) - now if wake else None)
                    continue
                if not released:
                    for host in hosts:
                        self._next_poll.pop(host, None)
            if released:
                self._give_back(released)
                continue
            try:
                self._poll(hosts)
                for host in hosts:
                    self._failing_since.pop(host, None)
            except (exceptions.AuthenticationFailed,
                    exceptions.NotAuthorized) as exc:
                self._fail_hosts(hosts, exc)
            except exceptions.NovaUnavailable as exc:
                for host in hosts:
                    self._poll_failed(host, exc)
            except exceptions.NovaMigrateFlowsError as exc:
                self._fail_hosts(hosts, exc)
            except Exception as exc:  # noqa: BLE001 - keep the poller alive
                LOG.exception("Polling the migrations of %s failed",
                              ", ".join(hosts))
                self._fail_hosts(
                    hosts, exceptions.NovaMigrateFlowsError(str(exc))
                )
            with self._cond:
                for host in hosts:
                    if self._watches.get(host):
                        self._reschedule(host)
                # The moves that poll ended may leave the run idle.
                self._confirm_when_needed()

    def _due(self) -> tuple[list[str], float]:
        """The hosts to poll together next, and when: the first host due,
        with every other host due within ``gather`` of it (one read serves
        them all; the first waits for the last of them)."""
        if not self._next_poll:
            return [], 0.0
        first = min(self._next_poll.values())
        hosts = sorted(h for h, due in self._next_poll.items()
                       if due <= first + self._gather)
        return hosts, max(self._next_poll[h] for h in hosts)

    def _reschedule(self, host: str) -> None:
        """Decide when to poll ``host`` next (called with the lock held)."""
        self._next_poll[host] = self._schedule.due(
            self._watches.get(host, []), self._last_poll.get(host),
            self._quiet.get(host, 0))

    def _poll_failed(
        self, host: str, exc: exceptions.NovaMigrateFlowsError
    ) -> None:
        """Keep watching through a passing outage (Nova still runs the
        migrations); give up on the host's watches once it lasts."""
        now = self._clock()
        since = self._failing_since.setdefault(host, now)
        if now - since > POLL_FAILURE_TIMEOUT:
            self._fail_hosts([host], exc)
            return
        LOG.warning("Cannot read the migrations of %s (%s); still watching "
                    "them", host, exc)

    def _fail_hosts(
        self, hosts: list[str], exc: exceptions.NovaMigrateFlowsError
    ) -> None:
        with self._cond:
            watches = [w for host in hosts
                       for w in self._watches.pop(host, [])]
        for watch in watches:
            watch.resolve(exc)

    # -- one poll ----------------------------------------------------------

    def _poll(self, hosts: list[str]) -> None:
        """One read of the migrations of ``hosts``; each host's watches
        brought up to date with it."""
        with self._cond:
            watching = {}
            previous = {}
            now = self._clock()
            for host in hosts:
                watches = [w for w in self._watches.get(host, ())
                           if not w.resolved]
                if watches:
                    watching[host] = watches
                    previous[host] = self._last_poll.get(host)
                self._last_poll[host] = now
        if not watching:
            return
        self.polls += 1
        found = self._records.read(watching)
        for host, watches in watching.items():
            self._update_host(host, watches, found.get(host, []),
                              previous[host])

    def _update_host(self, host: str, watches: list[Watch],
                     found: list[models.Migration],
                     previous: float | None) -> None:
        LOG.debug("Polled the migrations of %s: %s", host, ", ".join(
            f"{r.id} {r.status}" for r in found) or "none")
        self._count_quiet(host, found)
        now = self._clock()
        ended = False
        for watch in watches:
            unmatched = watch.migration_id is None
            record = self._records.find(watch, found, now)
            if record is None:
                continue
            if unmatched and watch.aborting:
                # Asked to abort before Nova recorded the migration.
                self._abort(watch)
            self._records.update(watch, record, now)
            if (watch.aborting and watch.abort_refused
                    and not watch.resolved
                    and record.status in constants.ABORTABLE_STATUSES
                    and record.status != watch.refused_in):
                # Nova refused the abort while its conductor still had the
                # migration (``accepted``): it takes one now.
                self._abort(watch)
            elif self._abort_lost(watch, record, now):
                LOG.warning(
                    "Live migration %s of %s is still %s %.0f s after Nova "
                    "took its abort; asking again", watch.migration_id,
                    watch.server_id, record.status,
                    now - (watch.abort_taken_at or now))
                self._abort(watch)
            ended = ended or watch.resolved
        # A migration that ended let the next one out of Nova's queue: one
        # first seen running now most likely started half-way since the
        # last poll.
        gap = 0.0
        if ended and previous is not None:
            gap = min(self._schedule.interval, now - previous)
        for watch in watches:
            if not watch.resolved:
                self._check(watch, now, gap)
        with self._cond:
            self._watches[host] = [
                w for w in self._watches.get(host, ()) if not w.resolved
            ]
            if not self._watches[host]:
                del self._watches[host]
                self._seen.pop(host, None)
                self._quiet.pop(host, None)

    def _abort_lost(self, watch: Watch, record: models.Migration,
                    now: float) -> bool:
        """Whether Nova took the abort of ``watch`` but its compute lost
        it: the migration is still abortable ``abort_retry_after`` seconds
        later (twice that after a second abort, and so on). A compute
        asked to abort just as it starts the migration (Nova records it
        ``running`` before its driver has a job to abort) drops the
        request and the migration runs to its end."""
        if (not watch.aborting or watch.resolved
                or watch.abort_taken_at is None
                or record.status not in constants.ABORTABLE_STATUSES):
            return False
        wait = self._abort_retry_after * 2 ** max(0, watch.aborts_taken - 1)
        return now - watch.abort_taken_at >= wait

    def _count_quiet(self, host: str, found: list[models.Migration]
                     ) -> None:
        """Count the polls in a row that read the same records of
        ``host``; any change starts the count again."""
        seen = frozenset((r.id, r.status, r.updated_at) for r in found)
        with self._cond:
            if self._seen.get(host) == seen:
                self._quiet[host] = self._quiet.get(host, 0) + 1
            else:
                self._seen[host] = seen
                self._quiet.pop(host, None)

    def _wake(self, host: str) -> None:
        """Poll ``host`` at the usual interval again: something was done
        to its migrations."""
        with self._cond:
            self._quiet.pop(host, None)

    def _check(self, watch: Watch, now: float, gap: float) -> None:
        """Progress, timeouts and estimates of a migration still going."""
        if watch.running_since is None:
            return
        self._records.first_seen_running(watch, now, gap)
        self._schedule.count_overdue(watch, now)
        if (self._schedule.wants_progress(watch)
                and now >= watch.next_progress_at):
            self._records.sample_progress(watch, now)
        elif self._unforeseen_alone(watch):
            # Nothing says when the run's only migration ends: its progress
            # at two polls gives the rate Nova copies at, and so its end,
            # which the next poll comes at.
            self._records.sample_progress(watch, now)
        if watch.timed_out:
            if watch.abort_refused and not watch.done.is_set():
                # Nova refused the timeout's abort: the task hears of the
                # timeout now, the slot comes back at the end.
                watch.resolve(watch.timeout_error(), keep=True)
            return
        reason = watch.timeouts.exceeded(
            watch.running_since,
            watch.last_progress[1] if watch.last_progress else None,
            now,
        )
        if reason is not None:
            self._take_timeout_action(watch, reason)

    def _unforeseen_alone(self, watch: Watch) -> bool:
        """Whether ``watch`` is a running live migration whose end the
        poller cannot tell (no rate, nothing learnt) and the only one it
        watches (in a drain, the first to end teaches the others')."""
        if (watch.kind != constants.LIVE_MIGRATION
                or watch.migration is None
                or watch.migration.status != "running"
                or self._schedule.expected_end(watch) is not None):
            return False
        with self._cond:
            return all(w is watch or w.resolved
                       for watches in self._watches.values()
                       for w in watches)

    def _take_timeout_action(self, watch: Watch, reason: str) -> None:
        action = watch.timeouts.action
        watch.timed_out = reason
        self._wake(watch.host)
        LOG.warning(
            "Live migration %s of server %s hit its %s: %s",
            watch.migration_id, watch.server_id, reason,
            timeouts_mod.DOING[action],
        )
        if action == timeouts_mod.ABORT:
            # The task hears of the timeout when the migration ends, or
            # when Nova refuses the abort.
            watch.aborting = reason
            self._abort(watch)
            return
        if action == timeouts_mod.FORCE_COMPLETE:
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
        watch.resolve(watch.timeout_error(), keep=True)

    # -- aborts ------------------------------------------------------------

    def _abort(self, watch: Watch) -> None:
        """Have the migration of ``watch`` aborted, off the poller thread."""
        watch.abort_refused = False
        watch.abort_taken_at = None
        self._wake(watch.host)
        self._aborts.submit(watch.host, functools.partial(
            self._send_abort, watch, watch.migration_id or 0))

    def _send_abort(self, watch: Watch, migration_id: int) -> None:
        """Abort (on an abort lane); tell the poller if Nova refused."""
        try:
            aborts.abort_live_migration(
                self._writer, self._compute, watch.server_id, migration_id)
            watch.aborts_taken += 1
            watch.abort_taken_at = self._clock()
            return
        except exceptions.NovaMigrateFlowsError as exc:
            LOG.info("Migration %s of %s could not be aborted (it may be "
                     "ending): %s", migration_id, watch.server_id, exc)
        watch.refused_in = (watch.migration.status if watch.migration
                            else None)
        watch.abort_refused = True
        with self._cond:
            if watch.host in self._watches:
                self._next_poll[watch.host] = self._clock()
                self._cond.notify_all()


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
