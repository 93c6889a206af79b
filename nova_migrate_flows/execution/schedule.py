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
"""When to poll a host: :class:`Schedule`, given its watches and the time.

A host is polled when one of its migrations is expected to end (learnt
from the migrations that ended before, or from the progress Nova reports),
when a timeout of one runs out or a progress sample is due, and at least
every poll interval (a few intervals when every migration of the host is
foreseen). While polls of a host find none of its migrations changed, that
interval doubles with each such poll, up to the longest interval; a change
brings it back. The schedule reads only the clocks it is given and the
:class:`~nova_migrate_flows.execution.migrations.Durations` learnt so far: no
thread, no Nova.
"""

from collections.abc import Callable, Sequence

from nova_migrate_flows import constants
from nova_migrate_flows.execution.migrations import Durations
from nova_migrate_flows.execution.watch import Watch

#: Seconds after its expected end that a host's last migration is polled,
#: and that one with others queued behind it is.
END_MARGIN = 0.05
END_MARGIN_QUEUED = 0.3
#: How many poll intervals the poller may go without looking at a host
#: whose migrations it can foresee (queued, or running with a known end).
QUIET_FACTOR = 5


class Schedule:
    """Says when a host is next due, and what a poll of it should do.

    :param durations: what the poller learnt of how long migrations take
    :param interval: the longest time between two polls of a host whose
        migrations change
    :param interval_min: the shortest time between two polls of a host
    :param interval_max: the longest time between two polls of a host
        whose migrations show no change (None: ``interval``)
    :param report_progress: whether someone wants the progress of every
        running live migration (a display), not only the progress timeout
    :param foresee: whether to poll when migrations are expected to end
        (not while Nova's notifications say when they do)
    :param clock: the poller's monotonic clock
    :param wall: the epoch clock, to compare with Nova's timestamps
    """

    def __init__(
        self,
        durations: Durations,
        *,
        interval: float,
        interval_min: float,
        report_progress: bool,
        clock: Callable[[], float],
        wall: Callable[[], float],
        interval_max: float | None = None,
        foresee: Callable[[], bool] = lambda: True,
    ):
        self.durations = durations
        self.foresee = foresee
        self.interval = interval
        self.interval_min = min(interval_min, interval)
        self.interval_max = max(interval_max or interval, interval)
        self.report_progress = report_progress
        self._clock = clock
        self._wall = wall

    def longest(self, quiet: int) -> float:
        """The longest time between two polls of a host whose last
        ``quiet`` polls in a row found none of its migrations changed."""
        return min(self.interval * 2 ** min(quiet, 32), self.interval_max)

    def due(self, watches: Sequence[Watch], last_poll: float | None,
            quiet: int = 0) -> float:
        """When to poll the host of ``watches`` next (last polled at
        ``last_poll``, or never; its last ``quiet`` polls saw no change)."""
        now = self._clock()
        longest = self.longest(quiet)
        watches = [w for w in watches if not w.resolved]
        # When one migration of the host runs with a known end and the
        # others wait behind it, the moments below say when to look: the
        # interval only bounds how long the poller goes without looking.
        # (A request that fails behind it is seen at that end: the host's
        # slot was taken until then all the same.)
        known = self.foresee() and (
            any(self._foreseen(w) for w in watches)
            and all(self._foreseen(w) or self._waiting(w) for w in watches))
        due = now + (max(longest, self.interval * QUIET_FACTOR) if known
                     else longest)
        # With more than one migration of the host in Nova's hands, the
        # next one starts by itself when one ends: seeing the end a little
        # later costs nothing, and saves polls that come too early.
        margin = END_MARGIN if len(watches) <= 1 else END_MARGIN_QUEUED
        for watch in watches:
            for moment in self._moments(watch, now, margin, longest):
                due = min(due, moment)
        earliest = now if last_poll is None else last_poll + \
            self.interval_min
        return max(due, earliest, now)

    def expected_end(self, watch: Watch) -> float | None:
        """When (the poller's clock) the migration of ``watch`` should end,
        if the poller can tell."""
        migration = watch.migration
        if (
            watch.rate
            and migration is not None
            and migration.bytes_total
            and watch.last_progress
        ):
            left = max(0, migration.bytes_total - watch.last_progress[0])
            return watch.last_progress[1] + left / watch.rate
        learnt = self.durations.learnt(watch.host, watch.kind)
        if learnt is None or watch.running_since is None:
            return None
        started = self.durations.nova_start(watch)
        if started is not None:
            # Nova's clock to ours (NTP keeps them close; a skew only
            # costs a few more polls).
            return self._clock() - (self._wall() - (started + learnt))
        return watch.running_since + learnt

    def count_overdue(self, watch: Watch, now: float) -> None:
        """Count a poll at ``now`` that found ``watch`` still going past its
        expected end: the polls of an overdue migration back off."""
        expected = self.expected_end(watch)
        if expected is not None and expected <= now:
            watch.overdue_polls += 1

    def wants_progress(self, watch: Watch) -> bool:
        """Whether the progress of ``watch`` is sampled while it runs (it
        runs: its record says so, or Nova's notification said it started
        and its record was not read since; no notification said it
        ended)."""
        migration = watch.migration
        return (
            watch.kind == constants.LIVE_MIGRATION
            and not watch.end_notified
            and watch.running_since is not None
            and (migration is None or migration.status == "running")
            and (self.report_progress or bool(watch.timeouts.progress))
        )

    def _foreseen(self, watch: Watch) -> bool:
        """Whether ``watch`` runs and the poller knows when it ends."""
        if watch.migration is None or watch.aborting:
            return False
        return (watch.running_since is not None
                and self.expected_end(watch) is not None)

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

    def _moments(self, watch: Watch, now: float, margin: float,
                 longest: float) -> list[float]:
        """The moments ``watch`` wants its host polled at (an overdue
        migration's polls back off up to ``longest`` apart)."""
        moments = []
        if watch.aborting and watch.migration is None:
            moments.append(now)
        if watch.confirm_at is not None:
            # Nova said it succeeded; the poller reads it by then.
            moments.append(watch.confirm_at)
        elif watch.end_notified:
            # Nova said it ended: its record says so at once, or soon.
            moments.append(now + self.interval_min)
        foresee = self.foresee()
        learnt = self.durations.learnt(watch.host, watch.kind)
        if foresee and watch.running_since is None and learnt is not None:
            # Not seen running yet: it ends this soon at the earliest (a
            # queued one later still: then the poll interval applies).
            first = watch.registered + learnt
            if first > now:
                moments.append(first)
        if watch.running_since is not None:
            expected = self.expected_end(watch) if foresee else None
            if expected is not None:
                if expected > now:
                    moments.append(expected + margin)
                else:
                    backoff = self.interval_min * (2 ** watch.overdue_polls)
                    moments.append(now + min(backoff, longest))
            last_progress_at = (watch.last_progress[1]
                                if watch.last_progress else None)
            moments += watch.timeouts.deadlines(watch.running_since,
                                                last_progress_at)
            if self.wants_progress(watch):
                moments.append(watch.next_progress_at)
        return moments
