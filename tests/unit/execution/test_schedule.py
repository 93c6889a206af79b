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
"""When a host is due: the schedule, with plain numbers and a set clock.

The poll interval is 2 s, the minimum 0.2 s, and it is 100 s on the
poller's clock unless a test says otherwise.
"""

import datetime
from typing import Any

import pytest

from nova_migrate_flows import constants
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import migrations, schedule
from nova_migrate_flows.execution.timeouts import Timeouts
from nova_migrate_flows.execution.watch import Watch

LIVE = constants.LIVE_MIGRATION
NOW = 100.0
INTERVAL = 2.0
INTERVAL_MIN = 0.2
#: When Nova created the migrations that say so, in epoch seconds.
CREATED = "2026-01-01T00:00:59"
CREATED_EPOCH = datetime.datetime(2026, 1, 1, 0, 0, 59,
                                  tzinfo=datetime.UTC).timestamp()


class Clock:
    """A clock that says what the test sets."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(durations: migrations.Durations | None = None, *, now: float = NOW,
         wall: float = 0.0, report_progress: bool = False
         ) -> schedule.Schedule:
    return schedule.Schedule(
        durations or migrations.Durations(), interval=INTERVAL,
        interval_min=INTERVAL_MIN, report_progress=report_progress,
        clock=Clock(now), wall=Clock(wall))


def learnt(seconds: float, kind: str = LIVE) -> migrations.Durations:
    durations = migrations.Durations()
    durations.average[("*", kind)] = seconds
    return durations


def watch(status: str | None = None, kind: str = LIVE, *,
          created_at: str | None = None, memory_total: int | None = None,
          **fields: Any) -> Watch:
    """A watch of host1; with ``status``, Nova's record of it says so."""
    migration = None
    if status is not None:
        migration = models.Migration(
            id=1, server_id="srv", status=status, migration_type=kind,
            created_at=created_at, memory_total=memory_total)
    fields.setdefault("registered", 90.0)
    return Watch(server_id="srv", host="host1", kind=kind,
                 since=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                 migration=migration, **fields)


# -- the interval and its bounds -------------------------------------------

def test_nothing_known_means_the_interval_on_the_clock_given():
    clock = Clock(NOW)
    plan = schedule.Schedule(migrations.Durations(), interval=INTERVAL,
                             interval_min=INTERVAL_MIN,
                             report_progress=False, clock=clock,
                             wall=Clock(0.0))

    assert plan.due([watch()], last_poll=None) == NOW + INTERVAL
    clock.now = 500.0
    assert plan.due([watch()], last_poll=None) == 500.0 + INTERVAL


@pytest.mark.parametrize(
    ("quiet", "longest"),
    [(0, 1.0), (1, 2.0), (3, 8.0), (5, 30.0), (10_000, 30.0)],
    ids=lambda value: str(value),
)
def test_each_poll_without_change_doubles_the_interval_up_to_the_longest(
    quiet, longest
):
    plan = schedule.Schedule(migrations.Durations(), interval=1.0,
                             interval_min=INTERVAL_MIN, interval_max=30.0,
                             report_progress=False, clock=Clock(NOW),
                             wall=Clock(0.0))

    assert plan.longest(quiet) == longest
    assert plan.due([watch("running", running_since=NOW - 1)], NOW,
                    quiet) == NOW + longest


def test_a_longest_interval_below_the_interval_turns_backing_off_off():
    plan = schedule.Schedule(migrations.Durations(), interval=1.0,
                             interval_min=INTERVAL_MIN, interval_max=0.5,
                             report_progress=False, clock=Clock(NOW),
                             wall=Clock(0.0))

    assert plan.longest(4) == 1.0


def test_an_abort_asked_before_the_record_is_seen_is_due_now():
    assert make().due([watch(aborting="SIGTERM")], last_poll=None) == NOW


def test_no_host_is_polled_twice_within_the_minimum_interval():
    asks_now = [watch(aborting="SIGTERM")]

    assert make().due(asks_now, last_poll=NOW - 0.05) == pytest.approx(
        NOW - 0.05 + INTERVAL_MIN)
    assert make().due(asks_now, last_poll=NOW - 1.0) == NOW


def test_the_minimum_interval_is_never_above_the_interval():
    plan = schedule.Schedule(migrations.Durations(), interval=1.0,
                             interval_min=5.0, report_progress=False,
                             clock=Clock(NOW), wall=Clock(0.0))

    assert plan.interval_min == 1.0


def test_resolved_watches_are_left_out():
    ended = watch(aborting="SIGTERM", resolved=True)

    assert make().due([ended, watch()], last_poll=None) == NOW + INTERVAL


# -- expected ends ---------------------------------------------------------

def test_a_migration_not_seen_running_is_due_when_it_could_end():
    requested = watch(registered=98.5)

    assert make(learnt(3.0)).due([requested], last_poll=None) == 101.5


def test_a_foreseen_migration_is_due_at_its_end_past_the_interval():
    running = watch("running", running_since=99.0)

    # It ends at 99 + 8 s: later than the interval, sooner than the
    # interval times the quiet factor.
    assert make(learnt(8.0)).due([running], last_poll=None) == \
        pytest.approx(107.0 + schedule.END_MARGIN)


def test_a_foreseen_migration_is_looked_at_within_the_quiet_factor():
    running = watch("running", running_since=99.0)

    assert make(learnt(60.0)).due([running], last_poll=None) == \
        NOW + INTERVAL * schedule.QUIET_FACTOR


def test_migrations_queued_behind_add_their_margin():
    running = watch("running", running_since=99.0)
    queued = watch("queued")
    requested = watch()

    due = make(learnt(8.0)).due([running, queued, requested],
                                last_poll=None)

    assert due == pytest.approx(107.0 + schedule.END_MARGIN_QUEUED)


def test_a_cold_move_beside_a_foreseen_migration_brings_the_interval_back():
    running = watch("running", running_since=99.0)
    cold = watch("accepted", kind="migration")

    assert make(learnt(8.0)).due([running, cold], last_poll=None) == \
        NOW + INTERVAL


def test_an_aborted_migration_is_not_foreseen():
    running = watch("running", running_since=99.0, aborting="SIGTERM")

    assert make(learnt(8.0)).due([running], last_poll=None) == \
        NOW + INTERVAL


@pytest.mark.parametrize(("overdue_polls", "after"),
                         [(0, 0.2), (1, 0.4), (3, 1.6), (4, 2.0), (9, 2.0)])
def test_an_overdue_migration_is_polled_with_a_growing_backoff(
        overdue_polls, after):
    # Expected at 90 + 3 s, it is late: the waits double, up to the
    # interval.
    late = watch("running", running_since=90.0, overdue_polls=overdue_polls)

    assert make(learnt(3.0)).due([late], last_poll=None) == \
        pytest.approx(NOW + after)


def test_only_a_poll_past_the_expected_end_counts_as_overdue():
    plan = make(learnt(3.0))
    late = watch("running", running_since=90.0)
    on_time = watch("running", running_since=99.0)

    plan.count_overdue(late, NOW)
    plan.count_overdue(on_time, NOW)

    assert (late.overdue_polls, on_time.overdue_polls) == (1, 0)


def test_the_end_follows_the_rate_of_progress():
    # 400 bytes left at 200 bytes/s from the last sample, at 99 s.
    copying = watch("running", running_since=95.0, memory_total=1000,
                    last_progress=(600, 99.0), rate=200.0)

    assert make().expected_end(copying) == pytest.approx(101.0)


def test_the_end_follows_nova_s_start_on_nova_s_clock():
    # Nova created it 1 s ago (its clock, epoch seconds); it takes 3 s:
    # it ends 2 s from now on the poller's clock.
    running = watch("running", running_since=99.5, created_at=CREATED)
    durations = learnt(3.0)

    assert make(durations, wall=CREATED_EPOCH + 1.0).expected_end(
        running) == pytest.approx(NOW + 2.0)
    # Queued behind one that ended 2 s after it was created, it started
    # then.
    durations.last_end[("host1", LIVE)] = CREATED_EPOCH + 2.0
    assert make(durations, wall=CREATED_EPOCH + 1.0).expected_end(
        running) == pytest.approx(NOW + 4.0)


def test_nothing_learnt_means_no_expected_end():
    assert make().expected_end(watch("running", running_since=99.0)) is None


# -- timeouts and progress -------------------------------------------------

def test_a_completion_timeout_brings_the_poll_forward():
    running = watch("running", running_since=99.0,
                    timeouts=Timeouts(completion=1.5))

    assert make().due([running], last_poll=None) == pytest.approx(100.5)


def test_a_progress_timeout_brings_the_poll_forward():
    running = watch("running", running_since=95.0, last_progress=(10, 99.5),
                    next_progress_at=200.0, timeouts=Timeouts(progress=0.6))

    assert make().due([running], last_poll=None) == pytest.approx(100.1)


def test_a_progress_sample_due_brings_the_poll_forward():
    running = watch("running", running_since=99.0, next_progress_at=100.7)

    assert make(report_progress=True).due([running], last_poll=None) == \
        pytest.approx(100.7)
    assert make().due([running], last_poll=None) == NOW + INTERVAL


@pytest.mark.parametrize(
    ("status", "kind", "report", "timeouts", "wanted"),
    [("running", LIVE, True, Timeouts(), True),
     ("running", LIVE, False, Timeouts(progress=30.0), True),
     ("running", LIVE, False, Timeouts(completion=30.0), False),
     ("queued", LIVE, True, Timeouts(), False),
     ("running", "migration", True, Timeouts(), False)],
    ids=["display", "progress-timeout", "no-one-asks", "queued", "cold"])
def test_progress_is_sampled_of_running_live_migrations_when_wanted(
        status, kind, report, timeouts, wanted):
    running = watch(status, kind=kind, running_since=99.0, timeouts=timeouts)

    assert make(report_progress=report).wants_progress(running) is wanted
