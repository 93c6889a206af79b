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
"""The one poller that watches every migration of a run.

Most tests run the poller thread against the in-memory cloud with short
real intervals. Those that need exact times use a :class:`ManualClock` and a
:class:`Turnstile` that lets the poller's reads through one at a time.
"""

import datetime
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.execution import migrations, writes
from nova_migrate_flows.execution import poller as poller_mod
from nova_migrate_flows.execution import schedule as schedule_mod
from nova_migrate_flows.execution import throttle as throttle_mod
from tests.unit.execution.conftest import (
    PATIENCE,
    ManualClock,
    StubCompute,
    Turnstile,
    deadline,
    wait_until,
)

LIVE = constants.LIVE_MIGRATION
#: Nova's Date header of a request, and a migration created one second
#: before it (Nova's clocks have second resolution).
ACCEPTED = "Thu, 01 Jan 2026 00:01:00 GMT"
CREATED = "2026-01-01T00:00:59.000000"
#: A migration made two seconds before it: within the clock's slack,
#: beyond its resolution.
EARLIER = "2026-01-01T00:00:58.000000"


class RecordingCloud(fake.FakeCompute):
    """The in-memory cloud, remembering how migrations were read."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.listed: list[dict[str, Any]] = []

    def list_migrations(self, **filters: Any) -> list[models.Migration]:
        self.listed.append(filters)
        return super().list_migrations(**filters)


@pytest.fixture
def cloud() -> RecordingCloud:
    return RecordingCloud(["host1", "host2", "host3"], steps=2)


@pytest.fixture
def stub() -> StubCompute:
    return StubCompute()


class Finals:
    """Counts ``on_final`` calls per server."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def of(self, server_id: str):
        return lambda watch: self.calls.append(server_id)


@pytest.fixture
def finals() -> Finals:
    return Finals()


def live(cloud, poller, server, target="host2", **options):
    """Live-migrate ``server`` and watch it, as the start task does."""
    result = cloud.live_migrate(server.id, target, "auto")
    return poller.watch(server.id, server.host, LIVE,
                        accepted_at=result.accepted_at, **options)


def hanging(cloud, host="host1"):
    server = cloud.add_server(host)
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    return server


# -- watching to the end ---------------------------------------------------

def test_a_live_migration_is_watched_to_its_end(cloud, make_poller, finals):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")

    watch = live(cloud, poller, server, on_final=finals.of(server.id))
    record = watch.wait(deadline())

    assert (record.status, record.server_id, record.dest_compute) == (
        "completed", server.id, "host2")
    assert watch.migration_id == record.id
    assert finals.calls == [server.id]
    assert cloud.get_server(server.id).host == "host2"


def test_take_hands_a_watch_over_once(cloud, make_poller):
    poller = make_poller(cloud, start=False)
    server = cloud.add_server("host1")

    watch = live(cloud, poller, server)

    assert poller.take(server.id) is watch
    assert poller.take(server.id) is None
    assert poller.take("unknown") is None


def drain_two_hosts(cloud, poller):
    """Live-migrate 3 servers of host1 and 2 of host2 to host3, watched to
    their end; their watches."""
    servers = [cloud.add_server("host1") for _ in range(3)]
    servers += [cloud.add_server("host2") for _ in range(2)]
    watches = [live(cloud, poller, s, target="host3") for s in servers]
    for watch in watches:
        assert watch.wait(deadline()).status == "completed"
    return watches


def test_one_read_per_source_host_per_poll(cloud, make_poller):
    poller = make_poller(cloud, gather=0.0)

    drain_two_hosts(cloud, poller)

    assert len(cloud.listed) == poller.polls
    assert {frozenset(f) for f in cloud.listed} == {
        frozenset({"source_compute", "changes_since"})}
    assert {f["source_compute"] for f in cloud.listed} == {"host1", "host2"}
    for filters in cloud.listed:
        since = datetime.datetime.fromisoformat(filters["changes_since"])
        assert since.tzinfo is not None


def test_hosts_due_together_are_polled_in_one_read(cloud, make_poller):
    poller = make_poller(cloud, gather=1.0)

    watches = drain_two_hosts(cloud, poller)

    # While both hosts had migrations, polls read them at once (the other
    # host was due within the gathering time): no filter but the time,
    # every record sorted to its host; host1's last ones alone.
    assert len(cloud.listed) == poller.polls
    assert {frozenset(f) for f in cloud.listed} == {
        frozenset({"changes_since"}),
        frozenset({"changes_since", "source_compute"})}
    assert {f.get("source_compute") for f in cloud.listed} == {None,
                                                               "host1"}
    assert {w.migration.source_compute for w in watches} == {"host1",
                                                               "host2"}
    assert all(w.migration.server_id == w.server_id for w in watches)


def test_the_read_asks_only_for_changes_since_the_oldest_watch(
    stub, make_poller
):
    poller = make_poller(stub)
    stub.add(1, created_at=CREATED)

    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: stub.listed, "a poll")

    assert stub.listed[0] == {"source_compute": "host1",
                              "changes_since": "2026-01-01T00:00:50+00:00"}


def test_a_failed_live_migration(cloud, make_poller, finals):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="fail")

    watch = live(cloud, poller, server, on_final=finals.of(server.id))
    with pytest.raises(exceptions.MigrationFailed) as raised:
        watch.wait(deadline())

    assert type(raised.value) is exceptions.MigrationFailed
    assert (raised.value.server_id, raised.value.status) == (server.id,
                                                             "failed")
    assert raised.value.migration_id == watch.migration_id
    assert "ended failed" in str(raised.value)
    assert finals.calls == [server.id]


def test_no_valid_host_for_a_live_migration(cloud, make_poller):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(live="no_valid_host")

    watch = live(cloud, poller, server, target=None)

    with pytest.raises(exceptions.MigrationFailed, match="ended error"):
        watch.wait(deadline())


def test_no_valid_host_for_a_cold_migration(cloud, make_poller):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(cold="no_valid_host")

    result = cloud.cold_migrate(server.id, None)
    watch = poller.watch(server.id, "host1", "migration",
                         accepted_at=result.accepted_at)

    with pytest.raises(exceptions.MigrationFailed, match="ended error"):
        watch.wait(deadline())


@pytest.mark.parametrize(
    ("kind", "start", "status"),
    [("migration", lambda c, s: c.cold_migrate(s.id, "host2"), "finished"),
     ("resize", lambda c, s: c.resize(s.id, "m1.medium"), "finished"),
     ("evacuation", lambda c, s: c.evacuate(s.id, "host2"), "done")],
    ids=["cold", "resize", "evacuate"],
)
def test_cold_moves_end_where_the_task_goes_on(
    cloud, make_poller, kind, start, status
):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    if kind == "evacuation":
        cloud.update_service(cloud.services["host1"].id, forced_down=True)

    result = start(cloud, server)
    watch = poller.watch(server.id, "host1", kind,
                         accepted_at=result.accepted_at)

    record = watch.wait(deadline())
    assert (record.status, record.migration_type) == (status, kind)


@pytest.mark.parametrize("status", ["reverted", "error", "failed"])
def test_a_cold_move_that_ends_badly_fails(stub, make_poller, status):
    poller = make_poller(stub)
    stub.add(1, migration_type="migration", status=status,
             created_at=CREATED)

    watch = poller.watch("srv", "host1", "migration", accepted_at=ACCEPTED)

    with pytest.raises(exceptions.MigrationFailed, match=f"ended {status}"):
        watch.wait(deadline())


# -- matching a watch to its migration -------------------------------------

def test_older_migrations_of_the_server_are_not_its_own(stub, make_poller):
    """Nor is one that had ended, made within the clock's slack but more
    than its resolution before the request: a resumed run asks again for
    a move its interrupted run stopped moments before, and Nova has not
    recorded the new request yet."""
    poller = make_poller(stub)
    stub.add(1, status="error", created_at="2026-01-01T00:00:50")
    stub.add(2, server_id="other", status="running", created_at=CREATED)
    stub.add(3, migration_type="migration", status="error",
             created_at=CREATED)
    stub.add(4, status="cancelled", created_at=EARLIER)

    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: len(stub.listed) >= 2, "two polls")

    assert not watch.done.is_set()
    assert watch.migration is None
    stub.add(5, status="running", created_at=CREATED)
    wait_until(lambda: watch.migration_id == 5, "the record to show up")
    stub.set(5, status="completed")
    assert watch.wait(deadline()).id == 5


def test_a_retry_does_not_take_the_record_of_the_try_before(stub,
                                                          make_poller):
    """Nova's scheduler refused the first try; the retry onto the next
    host, accepted within the clock's slack, is recorded a moment later."""
    poller = make_poller(stub)
    stub.add(1, status="error", created_at=CREATED, dest_compute=None)
    first = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    with pytest.raises(exceptions.MigrationFailed, match="migration 1 "):
        first.wait(deadline())

    retry = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    polls = len(stub.listed)
    wait_until(lambda: len(stub.listed) >= polls + 2, "two polls")

    assert retry.migration is None and not retry.done.is_set()
    stub.add(2, status="completed", created_at=CREATED)
    assert retry.wait(deadline()).id == 2


def poll_at(stub, clock, moment: float) -> None:
    """Move ``clock`` to ``moment`` and wait for the poll it brings."""
    polls = len(stub.listed)
    clock.set(moment)
    wait_until(lambda: len(stub.listed) > polls, f"a poll at {moment}")


def test_a_running_record_made_before_the_request_is_taken(stub,
                                                           make_poller):
    """Nova's clocks may disagree by a second or two: a record that has
    not ended is the request's."""
    poller = make_poller(stub)
    stub.add(85, status="running", created_at=EARLIER)
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    wait_until(lambda: watch.migration_id == 85, "the record taken")


def test_an_ended_record_made_before_is_taken_once_none_other_comes(
        stub, make_poller):
    clock = ManualClock()
    poller = make_poller(stub, clock=clock)
    stub.add(85, status="error", created_at=EARLIER)
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    start = clock.now

    poll_at(stub, clock, start + migrations.RECORD_LOOKUP_AFTER - 1)
    assert watch.migration is None
    poll_at(stub, clock, start + migrations.RECORD_LOOKUP_AFTER + 1)

    with pytest.raises(exceptions.MigrationFailed, match="migration 85 "):
        watch.wait(deadline())


def test_the_newest_matching_record_is_the_watch_s(stub, make_poller):
    poller = make_poller(stub)
    stub.add(5, status="error", created_at=CREATED)
    stub.add(6, status="completed", created_at="2026-01-01T00:01:00")

    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    assert watch.wait(deadline()).id == 6


def test_an_adopted_migration_is_followed_by_its_id(stub, make_poller):
    poller = make_poller(stub)
    adopted = stub.add(5, status="running")
    stub.add(6, status="error")

    watch = poller.watch("srv", "host1", LIVE, migration=adopted)
    wait_until(lambda: len(stub.listed) >= 2, "two polls")
    stub.set(5, status="completed")

    assert watch.wait(deadline()).id == 5
    assert stub.listed[0]["changes_since"] == "2026-01-01T00:00:00+00:00"


def test_a_migration_adopted_from_the_cloud(cloud, make_poller):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    cloud.live_migrate(server.id, "host2", "auto")
    [record] = cloud.list_migrations(server_id=server.id)

    watch = poller.watch(server.id, "host1", LIVE, migration=record)

    assert watch.wait(deadline()).id == record.id


def test_a_request_nova_never_recorded_fails_in_the_end(stub, make_poller):
    clock = ManualClock()
    poller = make_poller(stub, clock=clock)
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    start = clock.now

    poll_at(stub, clock, start + migrations.RECORD_TIMEOUT - 1)
    poll_at(stub, clock, start + migrations.RECORD_TIMEOUT)
    # The first of these polls is over: it did not give up yet.
    assert not watch.done.is_set()
    clock.set(start + migrations.RECORD_TIMEOUT + 1)

    with pytest.raises(exceptions.MigrationFailed,
                       match="recorded no migration"):
        watch.wait(deadline())


def test_a_failing_read_keeps_the_watches_while_nova_comes_back(
        stub, make_poller, finals):
    poller = make_poller(stub)
    stub.failure = exceptions.NovaUnavailable("nova is down")
    stub.failing_host = "host1"
    stub.add(1, server_id="a", created_at=CREATED)

    watch = poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED,
                         on_final=finals.of("a"))
    wait_until(lambda: len(stub.listed) >= 2, "two failed polls")

    assert not watch.done.is_set()
    assert finals.calls == []
    stub.failure = None
    stub.set(1, status="completed")
    assert watch.wait(deadline()).id == 1
    assert finals.calls == ["a"]


def test_a_lasting_read_failure_fails_the_watches_of_that_host(
        stub, make_poller, finals, monkeypatch):
    monkeypatch.setattr(poller_mod, "POLL_FAILURE_TIMEOUT", 0.05)
    # Each host read on its own: only the reads of host1 fail.
    poller = make_poller(stub, gather=0.0)
    stub.failure = exceptions.NovaUnavailable("nova is down")
    stub.failing_host = "host1"
    stub.add(1, server_id="a", created_at=CREATED)
    stub.add(2, server_id="b", source_compute="host2", created_at=CREATED)

    lost = poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED,
                        on_final=finals.of("a"))
    other = poller.watch("b", "host2", LIVE, accepted_at=ACCEPTED,
                         on_final=finals.of("b"))

    with pytest.raises(exceptions.NovaUnavailable, match="nova is down"):
        lost.wait(deadline())
    assert finals.calls == ["a"]
    stub.set(2, status="completed")
    assert other.wait(deadline()).id == 2


def test_refused_credentials_fail_the_watches_at_once(stub, make_poller):
    poller = make_poller(stub)
    stub.failure = exceptions.AuthenticationFailed("token refused")
    stub.add(1, server_id="a", created_at=CREATED)

    watch = poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED)

    with pytest.raises(exceptions.AuthenticationFailed):
        watch.wait(deadline())


def test_an_unexpected_error_does_not_kill_the_poller(stub, make_poller):
    poller = make_poller(stub)
    stub.failure = RuntimeError("bug")
    stub.add(1, status="completed", created_at=CREATED)

    broken = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    with pytest.raises(exceptions.NovaMigrateFlowsError, match="bug"):
        broken.wait(deadline())
    stub.failure = None
    again = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    assert again.wait(deadline()).id == 1


def test_waiting_can_be_interrupted(cloud, make_poller):
    poller = make_poller(cloud)
    watch = live(cloud, poller, hanging(cloud))

    with pytest.raises(exceptions.Interrupted):
        watch.wait(lambda: True, slice_s=0.001)


# -- timeouts --------------------------------------------------------------

def test_completion_timeout_aborts(cloud, make_poller, finals):
    poller = make_poller(cloud)
    server = hanging(cloud)

    watch = live(cloud, poller, server, on_final=finals.of(server.id),
                 timeouts=poller_mod.Timeouts(completion=0.05))
    with pytest.raises(exceptions.MigrationTimeout) as raised:
        watch.wait(deadline())

    assert raised.value.status == "cancelled"
    assert "completion timeout" in str(raised.value)
    assert ("abort_migration", server.id) in cloud.writes
    after = cloud.get_server(server.id)
    assert (after.host, after.status) == ("host1", "ACTIVE")
    assert finals.calls == [server.id]


def test_completion_timeout_forces_completion(cloud, make_poller):
    poller = make_poller(cloud)
    server = hanging(cloud)

    watch = live(cloud, poller, server, timeouts=poller_mod.Timeouts(
        completion=0.05, action="force_complete"))
    record = watch.wait(deadline())

    assert record.status == "completed"
    assert watch.force_completed
    assert watch.timed_out is not None
    assert watch.timed_out.startswith("completion timeout")
    assert cloud.get_server(server.id).host == "host2"


def test_completion_timeout_fails_but_keeps_the_slot_until_the_end(
    cloud, make_poller, finals
):
    poller = make_poller(cloud)
    server = hanging(cloud)

    watch = live(cloud, poller, server, on_final=finals.of(server.id),
                 timeouts=poller_mod.Timeouts(completion=0.05,
                                              action="fail"))
    with pytest.raises(exceptions.MigrationTimeout):
        watch.wait(deadline())

    assert finals.calls == []
    assert not watch.resolved
    assert ("abort_migration", server.id) not in cloud.writes
    cloud.abort_migration(server.id, watch.migration_id)
    wait_until(lambda: finals.calls == [server.id], "the slot to come back")
    assert isinstance(watch.error, exceptions.MigrationTimeout)


def test_progress_timeout_aborts_a_migration_that_stalls(cloud, make_poller):
    poller = make_poller(cloud, progress_interval=0.01)
    server = hanging(cloud)

    watch = live(cloud, poller, server,
                 timeouts=poller_mod.Timeouts(progress=0.05))

    with pytest.raises(exceptions.MigrationTimeout, match="no progress"):
        watch.wait(deadline())
    assert ("abort_migration", server.id) in cloud.writes


def test_progress_timeout_spares_a_migration_that_progresses(
    cloud, make_poller
):
    poller = make_poller(cloud, progress_interval=0.005)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(steps=8)

    watch = live(cloud, poller, server,
                 timeouts=poller_mod.Timeouts(progress=2.0))

    assert watch.wait(deadline()).status == "completed"
    assert watch.timed_out is None
    assert watch.last_progress is not None


@pytest.mark.parametrize(
    ("action", "refusal"),
    [("abort", exceptions.BadRequest("not in progress", 400)),
     ("force_complete", exceptions.Conflict("not running", 409))],
    ids=["abort-refused", "force-complete-refused"],
)
def test_a_refused_timeout_action_still_ends_the_wait(
    stub, make_poller, finals, action, refusal
):
    # A migration stuck in post-migrating can be neither aborted nor
    # forced: the task must not wait for it for ever.
    poller = make_poller(stub)
    stub.refuse = refusal
    stub.add(1, status="post-migrating", created_at=CREATED)

    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED,
                         on_final=finals.of("srv"),
                         timeouts=poller_mod.Timeouts(completion=0.05,
                                                      action=action))

    with pytest.raises(exceptions.MigrationTimeout):
        watch.wait(deadline())
    assert finals.calls == []
    stub.set(1, status="completed")
    wait_until(lambda: finals.calls == ["srv"], "the slot to come back")


@pytest.mark.parametrize("kind", ["evacuation", "migration"])
def test_completion_timeout_of_a_cold_move_stuck_in_pre_migrating(
    stub, make_poller, kind
):
    poller = make_poller(stub)
    stub.add(1, migration_type=kind, status="pre-migrating",
             created_at=CREATED)

    watch = poller.watch("srv", "host1", kind, accepted_at=ACCEPTED,
                         timeouts=poller_mod.Timeouts(completion=0.05,
                                                      action="fail"))

    with pytest.raises(exceptions.MigrationTimeout):
        watch.wait(deadline())


# -- aborting everything ---------------------------------------------------

def test_abort_all_aborts_live_migrations_only(make_poller):
    cloud = fake.FakeCompute(["host1", "host2", "host3"], steps=500)
    poller = make_poller(cloud)
    running, queued = cloud.add_server("host1"), cloud.add_server("host1")
    cold = cloud.add_server("host2")
    watches = [live(cloud, poller, s, target="host3")
               for s in (running, queued)]
    result = cloud.cold_migrate(cold.id, "host3")
    cold_watch = poller.watch(cold.id, "host2", "migration",
                              accepted_at=result.accepted_at)
    wait_until(lambda: all(w.migration for w in watches), "both records")

    assert poller.abort_all("SIGTERM") == 2

    for watch in watches:
        with pytest.raises(exceptions.MigrationFailed,
                           match=r"aborted \(SIGTERM\)") as raised:
            watch.wait(deadline())
        assert raised.value.status == "cancelled"
    assert not cold_watch.done.is_set()
    assert [w for w in cloud.writes if w[0] == "abort_migration"] == [
        ("abort_migration", running.id), ("abort_migration", queued.id)]


def test_abort_all_before_the_record_is_seen(cloud, make_poller):
    poller = make_poller(cloud, start=False)
    server = hanging(cloud)
    watch = live(cloud, poller, server)

    assert poller.abort_all("interrupted") == 1
    assert ("abort_migration", server.id) not in cloud.writes
    poller.start()

    with pytest.raises(exceptions.MigrationFailed, match="aborted"):
        watch.wait(deadline())
    assert ("abort_migration", server.id) in cloud.writes


def test_an_abort_refused_in_nova_s_conductor_is_sent_again_later(
    stub, make_poller
):
    """Interrupted just as a pipelined request went: Nova refuses to abort
    a migration its conductor still checks (``accepted``), and aborts it
    once its compute has it."""
    poller = make_poller(stub)
    stub.add(1, status="accepted", created_at=CREATED)
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: watch.migration_id == 1, "the record to be seen")
    stub.refuse = exceptions.BadRequest("migration 1 is accepted", 400)

    assert poller.abort_all("interrupted") == 1
    wait_until(lambda: watch.abort_refused, "the refusal")
    polls = len(stub.listed)
    wait_until(lambda: len(stub.listed) > polls + 2, "more polls")
    assert stub.aborted == [("srv", 1)]   # not again while still accepted

    stub.refuse = None
    stub.set(1, status="queued")
    wait_until(lambda: len(stub.aborted) == 2, "the abort sent again")
    stub.set(1, status="cancelled")

    with pytest.raises(exceptions.MigrationStopped, match="aborted"):
        watch.wait(deadline())
    assert stub.aborted == [("srv", 1), ("srv", 1)]


def test_a_migration_watched_after_abort_all_is_aborted_too(stub,
                                                             make_poller):
    """Its request went as the run stopped (the start task was sending
    it): it is in flight as well."""
    poller = make_poller(stub)
    assert poller.abort_all("interrupted") == 0
    stub.add(1, status="running", created_at=CREATED)

    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: stub.aborted == [("srv", 1)], "the abort")
    stub.set(1, status="cancelled")

    with pytest.raises(exceptions.MigrationStopped, match="interrupted"):
        watch.wait(deadline())


def test_an_abort_nova_took_but_lost_is_sent_again(stub, make_poller):
    """Nova's compute drops an abort that comes as it starts the migration
    (``running`` before its driver has a job): the migration goes on."""
    poller = make_poller(stub, abort_retry_after=0.2)
    stub.add(1, status="running", created_at=CREATED)
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: watch.migration_id == 1, "the record to be seen")

    assert poller.abort_all("interrupted") == 1
    wait_until(lambda: len(stub.aborted) == 2, "the abort sent again")
    stub.set(1, status="cancelled")

    with pytest.raises(exceptions.MigrationStopped, match="interrupted"):
        watch.wait(deadline())
    assert watch.aborts_taken == 2


def test_an_abort_is_sent_again_only_when_its_wait_is_over(stub,
                                                         make_poller):
    """Each further abort waits twice as long as the one before; none is
    sent again once the migration left the abortable statuses."""
    clock = ManualClock()
    gate = Turnstile(stub, clock)
    poller = make_poller(gate, clock=clock, poll_interval=1.0,
                         poll_interval_max=1.0, abort_retry_after=10.0)
    stub.add(1, status="running", created_at=CREATED)
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    gate.poll(1001.0)
    assert watch.migration_id == 1

    poller.abort_all("interrupted")
    wait_until(lambda: watch.abort_taken_at == 1001.0, "the abort taken")
    gate.poll(1001.0)                 # the poll an abort brings
    gate.poll(1010.5)
    assert len(stub.aborted) == 1
    gate.poll(1011.5)
    wait_until(lambda: watch.abort_taken_at == 1011.5, "the second abort")
    assert len(stub.aborted) == 2
    gate.poll(1031.0)                 # the third waits 20 s
    assert len(stub.aborted) == 2
    stub.set(1, status="post-migrating")
    gate.poll(1032.0)
    assert len(stub.aborted) == 2
    stub.set(1, status="cancelled")
    gate.poll(1033.0)

    with pytest.raises(exceptions.MigrationStopped, match="interrupted"):
        watch.wait(deadline())
    assert len(stub.aborted) == 2


def test_abort_all_skips_what_has_ended(cloud, make_poller):
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    watch = live(cloud, poller, server)
    watch.wait(deadline())

    assert poller.abort_all("late") == 0
    assert ("abort_migration", server.id) not in cloud.writes


# -- one abort path --------------------------------------------------------

class BusyAborts(fake.FakeCompute):
    """The in-memory cloud, answering 409 to the aborts of the ``busy``
    servers (as Nova does while an instance is in some task_state)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.busy: set[str] = set()
        self.refused: list[str] = []

    def abort_migration(self, server_id: str, migration_id: int) -> None:
        if server_id in self.busy:
            self.refused.append(server_id)
            raise exceptions.Conflict(
                f"Cannot 'abort' instance {server_id} while it is in "
                "task_state migrating", 409)
        super().abort_migration(server_id, migration_id)


class HeldWaits:
    """The waits of ``send_once`` between two 409s, on a clock of their
    own: each holds until the test lets them go (or PATIENCE is over),
    then moves that clock on by its length."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self.waiting = threading.Event()
        self.go = threading.Event()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.waiting.set()
        self.go.wait(PATIENCE)
        self.now += seconds


@pytest.fixture
def held(monkeypatch, make_poller) -> Iterator[HeldWaits]:
    """Hold the waits of the aborts (let go before the pollers stop)."""
    waits = HeldWaits()
    monkeypatch.setattr(writes, "time", waits)
    yield waits
    waits.go.set()


def test_an_abort_waiting_out_409s_does_not_hold_up_other_hosts(
    make_poller, held
):
    cloud = BusyAborts(["host1", "host2", "host3"], steps=2)
    poller = make_poller(cloud)
    stuck = hanging(cloud)
    cloud.busy.add(stuck.id)
    timed_out = live(cloud, poller, stuck, target="host3",
                     timeouts=poller_mod.Timeouts(completion=0.05))
    assert held.waiting.wait(PATIENCE), "the abort met no 409"

    # While the abort of host1's migration waits out Nova's 409, host2's
    # migration is seen to its end.
    other = cloud.add_server("host2")
    record = live(cloud, poller, other, target="host3").wait(deadline())

    assert record.status == "completed"
    assert (cloud.refused, held.waits) == ([stuck.id], [1.0])
    assert not timed_out.done.is_set()
    cloud.busy.clear()
    held.go.set()
    with pytest.raises(exceptions.MigrationTimeout) as raised:
        timed_out.wait(deadline())
    assert raised.value.status == "cancelled"


def test_abort_all_does_not_wait_for_nova_to_take_the_aborts(
    make_poller, held
):
    cloud = BusyAborts(["host1", "host2", "host3"], steps=2)
    poller = make_poller(cloud)
    stuck = hanging(cloud)
    cloud.busy.add(stuck.id)
    watch = live(cloud, poller, stuck, target="host3")
    wait_until(lambda: watch.migration is not None, "its record")

    assert poller.abort_all("SIGTERM") == 1
    assert held.waiting.wait(PATIENCE), "the abort met no 409"
    # Another host's move, watched meanwhile (a cold one: a live one
    # watched after abort_all is aborted too).
    other = cloud.add_server("host2")
    result = cloud.cold_migrate(other.id, "host3")
    record = poller.watch(other.id, "host2", "migration",
                          accepted_at=result.accepted_at).wait(deadline())

    assert record.status == "finished"
    assert held.waits == [1.0]
    cloud.busy.clear()
    held.go.set()
    with pytest.raises(exceptions.MigrationFailed,
                       match=r"aborted \(SIGTERM\)"):
        watch.wait(deadline())


class LostAbortAnswers(fake.FakeCompute):
    """Nova takes every abort, and its answer is lost on the way back."""

    def abort_migration(self, server_id: str, migration_id: int) -> None:
        super().abort_migration(server_id, migration_id)
        raise exceptions.AmbiguousWrite("abort_migration: HTTP 502", 502)


def test_a_timeout_abort_whose_answer_is_lost_is_looked_up(make_poller):
    cloud = LostAbortAnswers(["host1", "host2"], steps=2)
    poller = make_poller(cloud)
    server = hanging(cloud)

    watch = live(cloud, poller, server,
                 timeouts=poller_mod.Timeouts(completion=0.05))
    with pytest.raises(exceptions.MigrationTimeout) as raised:
        watch.wait(deadline())

    # Nova shows the abort: it is not sent again, and the task hears of
    # the timeout when the migration ends.
    assert raised.value.status == "cancelled"
    assert cloud.writes.count(("abort_migration", server.id)) == 1


# -- throttle slots --------------------------------------------------------

def test_the_slot_comes_back_when_the_migration_ends_unwatched(
    cloud, make_poller
):
    throttle = throttle_mod.Throttle({throttle_mod.LIVE: 1}, total=1)
    poller = make_poller(cloud)
    server = cloud.add_server("host1")
    assert throttle.acquire(server.id, "host1", throttle_mod.LIVE)

    live(cloud, poller, server,
         on_final=lambda watch: throttle.release(server.id))

    # Nobody waits on the watch: the poller alone gives the slot back.
    wait_until(lambda: throttle.held() == 0, "the slot to come back")
    assert cloud.get_server(server.id).host == "host2"


def read_again(stub, watch) -> None:
    """Wait until the poller read the records as they are now (or the
    watch ended)."""
    polls = len(stub.listed)
    wait_until(lambda: watch.done.is_set() or len(stub.listed) > polls + 1,
               "the records to be read again")


@pytest.mark.parametrize("statuses, handed", [
    (["accepted"], False),
    (["accepted", "error"], False),
    (["accepted", "queued"], True),
    (["accepted", "preparing"], True),
    (["running"], True),
    (["completed"], True),
])
def test_a_watch_says_once_when_nova_s_compute_holds_its_migration(
    stub, make_poller, statuses, handed
):
    poller = make_poller(stub)
    calls: list[str] = []
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED,
                         on_handed=lambda w: calls.append(w.host))
    stub.add(7, status=statuses[0], created_at=CREATED)
    for status in statuses[1:]:
        read_again(stub, watch)
        stub.set(7, status=status)
    read_again(stub, watch)

    assert calls == (["host1"] if handed else [])
    assert watch.handed is handed


def test_a_start_notification_says_nova_s_compute_holds_it(stub,
                                                           make_poller):
    poller = make_poller(stub, start=False)
    calls: list[str] = []
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED,
                 on_handed=lambda w: calls.append(w.server_id))

    assert poller.notified("srv", "instance.live_migration_pre.start",
                           ended=False)

    assert calls == ["srv"]


# -- progress --------------------------------------------------------------

def test_on_progress_reports_growing_progress(cloud, make_poller):
    seen: list[float] = []

    def report(watch: poller_mod.Watch) -> None:
        assert watch.migration is not None
        seen.append(watch.migration.percent or 0.0)

    poller = make_poller(cloud, on_progress=report, progress_interval=0.001)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id] = fake.Behaviour(steps=4)

    live(cloud, poller, server).wait(deadline())

    assert len(seen) >= 2
    assert seen == sorted(seen)
    assert seen[-1] > seen[0]


def progress(migration_id: int, done: int, total: int = 1000
             ) -> models.Migration:
    """A record of ``GET /servers/{id}/migrations``."""
    return models.Migration(
        id=migration_id, server_id="srv", status="running",
        migration_type=LIVE, memory_total=total, memory_processed=done,
        memory_remaining=total - done, disk_total=0, disk_processed=0,
        disk_remaining=0,
    )


def polled_at_the_end(gate, last_sample: float, left_s: float) -> None:
    """The poll after the sample at ``last_sample`` comes when the rate
    says the migration ends, ``left_s`` later (plus the end margin), not
    before."""
    end = last_sample + left_s
    assert not gate.arrive(end + 0.04, patience=0.3)
    gate.poll(end + 0.0501)


def test_the_rate_estimates_the_end_and_the_poll_comes_then(
    stub, make_poller
):
    clock = ManualClock()
    gate = Turnstile(stub, clock)
    poller = make_poller(gate, clock=clock, poll_interval=0.25,
                         progress_interval=0.5, on_progress=lambda w: None)
    stub.add(1, status="running", created_at=CREATED)
    stub.progress = [progress(1, 100)]
    t = clock.now
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    gate.poll(t + 0.25)          # first seen running: first sample
    gate.poll(t + 0.5)           # no sample due yet
    stub.progress = [progress(1, 800)]
    gate.poll(t + 0.75)          # second sample: 700 bytes in 0.5 s

    # 200 bytes left at 1400 bytes/s: the end is expected 1/7 s after the
    # last sample, and the next poll comes then (plus a little), before
    # the poll interval (0.25 s) is over.
    polled_at_the_end(gate, t + 0.75, 200 / 1400)
    assert watch.rate == pytest.approx(1400.0)
    assert watch.last_progress == (800, t + 0.75)


def counting_samples(stub) -> list[str]:
    """The servers whose progress the poller read, in order."""
    sampled: list[str] = []
    read = stub.server_migrations

    def server_migrations(server_id: str) -> list[models.Migration]:
        sampled.append(server_id)
        return read(server_id)

    stub.server_migrations = server_migrations
    return sampled


def test_the_run_s_only_migration_is_foreseen_from_its_progress(
    stub, make_poller
):
    """No display, no progress timeout, nothing learnt: a lone migration's
    progress at two polls says when it ends."""
    sampled = counting_samples(stub)
    clock = ManualClock()
    gate = Turnstile(stub, clock)
    poller = make_poller(gate, clock=clock, poll_interval=1.0)
    stub.add(1, status="running", created_at=CREATED)
    stub.progress = [progress(1, 100)]
    t = clock.now
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    gate.poll(t + 1.0)           # first seen running: first sample
    stub.progress = [progress(1, 600)]
    gate.poll(t + 2.0)           # second sample: 500 bytes in 1 s

    # 400 bytes left at 500 bytes/s: the next poll comes 0.8 s later (plus
    # a little), before the poll interval is over; no more samples.
    polled_at_the_end(gate, t + 2.0, 400 / 500)
    assert watch.rate == pytest.approx(500.0)
    assert sampled == ["srv", "srv"]


def test_migrations_of_a_drain_are_not_sampled_for_their_end(
    stub, make_poller
):
    """Two at once: the first to end teaches when the other ends."""
    sampled = counting_samples(stub)
    poller = make_poller(stub)
    stub.add(1, status="running", created_at=CREATED)
    stub.add(2, server_id="other", status="running", created_at=CREATED,
             source_compute="host2")
    stub.progress = [progress(1, 100)]
    first = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    poller.watch("other", "host2", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: first.running_since is not None, "a poll")
    polls = len(stub.listed)
    wait_until(lambda: len(stub.listed) > polls + 2, "more polls")

    assert sampled == []


# -- learnt durations ------------------------------------------------------

def test_durations_are_learnt_per_host_and_kind(stub, make_poller):
    poller = make_poller(stub, poll_interval=0.01, poll_interval_min=0.001)
    assert poller.learnt_duration("host1", LIVE) is None

    # Durations come from Nova's own timestamps: created at 00:59, ended at
    # 01:02 -> 3 s, however late the poller saw it end.
    stub.add(1, server_id="a", status="running", created_at=CREATED)
    first = poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: first.running_since is not None, "a running")
    stub.set(1, status="completed", updated_at="2026-01-01T00:01:02")
    first.wait(deadline())

    assert poller.learnt_duration("host1", LIVE) == pytest.approx(3.0)
    assert poller.learnt_duration("host9", LIVE) == pytest.approx(3.0)
    assert poller.learnt_duration("host1", "migration") is None

    # The second was queued behind the first (created at 01:00): it started
    # when the first ended (01:02) and ended at 01:07, 5 s. The average of
    # the two is 4 s.
    stub.add(2, server_id="b", status="running",
             created_at="2026-01-01T00:01:00")
    second = poller.watch("b", "host1", LIVE, accepted_at=ACCEPTED)
    wait_until(lambda: second.running_since is not None, "b running")
    stub.set(2, status="completed", updated_at="2026-01-01T00:01:07")
    second.wait(deadline())

    assert poller.learnt_duration("host1", LIVE) == pytest.approx(4.0)


def test_a_migration_is_polled_when_it_should_end(stub, make_poller):
    poller = make_poller(stub, poll_interval=30.0, poll_interval_min=0.001)
    # Learnt from earlier migrations:
    poller._durations.average[("*", LIVE)] = 0.5
    stub.add(1, server_id="a", status="completed", created_at=CREATED)
    started = time.monotonic()

    watch = poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED)
    watch.wait(lambda: time.monotonic() - started > 10)

    # Polled once, when it was expected to end: not a poll interval (30 s)
    # after it was requested.
    assert watch.done.is_set()
    assert len(stub.listed) == 1


def test_timed_out_migrations_teach_nothing(cloud, make_poller):
    poller = make_poller(cloud)

    watch = live(cloud, poller, hanging(cloud), timeouts=poller_mod.Timeouts(
        completion=0.05, action="force_complete"))
    watch.wait(deadline())

    assert poller.learnt_duration("host1", LIVE) is None


def test_a_migration_ending_does_not_restart_another_s_clock(make_poller):
    clock = ManualClock()
    cloud = fake.FakeCompute(["host1", "host2"], steps=2,
                             max_concurrent_live_migrations=2)
    gate = Turnstile(cloud, clock)
    poller = make_poller(gate, clock=clock, poll_interval=0.125)
    stuck, quick = hanging(cloud), cloud.add_server("host1")
    slow = live(cloud, poller, stuck)
    fast = live(cloud, poller, quick)
    t = clock.now

    for poll in range(1, 6):         # the quick one ends at the fifth
        gate.poll(t + poll * 0.125)

    assert fast.done.is_set()
    assert slow.running_since == t + 0.125


def test_a_migration_that_waited_in_nova_s_queue_started_mid_gap(
    cloud, make_poller
):
    clock = ManualClock()
    gate = Turnstile(cloud, clock)
    poller = make_poller(gate, clock=clock, poll_interval=0.125)
    first, second = cloud.add_server("host1"), cloud.add_server("host1")
    ahead = live(cloud, poller, first)
    behind = live(cloud, poller, second)
    t = clock.now

    for poll in range(1, 6):         # the first ends at the fifth read,
        gate.poll(t + poll * 0.125)  # and the second leaves the queue

    assert ahead.done.is_set()
    assert behind.migration is not None
    assert behind.migration.status == "preparing"
    assert behind.running_since == pytest.approx(t + 5 * 0.125 - 0.125 / 2)


def test_watch_times_come_from_the_clock_given(stub, make_poller):
    clock = ManualClock(now=5.0)
    poller = make_poller(stub, start=False, clock=clock)

    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    assert watch.registered == 5.0
    assert watch.since == datetime.datetime(2026, 1, 1, 0, 0, 50,
                                            tzinfo=datetime.UTC)


def test_a_queued_migration_does_not_make_the_poller_spin(stub, make_poller):
    poller = make_poller(stub, poll_interval=0.5, poll_interval_min=0.01)
    # Learnt: migrations are quick.
    poller._durations.average[("*", LIVE)] = 0.05
    stub.add(1, server_id="a", status="queued", created_at=CREATED)
    watch = poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED)

    time.sleep(1.2)

    # Queued, it may end much later than a migration takes: the poll
    # interval applies (3 polls or so), not the minimum (over 100).
    assert not watch.done.is_set()
    assert len(stub.listed) <= 6


def foreseeing(stub, make_poller):
    """A poller whose clocks agree with Nova's, at the time migration 1
    (running, created at 00:59) was created; migrations take 3 s, so it
    ends at 01:02 (Nova's time)."""
    created = datetime.datetime(2026, 1, 1, 0, 0, 59, tzinfo=datetime.UTC)
    clock = ManualClock(now=created.timestamp())
    gate = Turnstile(stub, clock)
    poller = make_poller(gate, clock=clock, wall=lambda: clock.now,
                         poll_interval=0.25, poll_interval_min=0.01)
    poller._durations.average[("*", LIVE)] = 3.0
    stub.add(1, server_id="a", status="running", created_at=CREATED)
    return gate, poller, clock.now


def test_a_host_whose_migrations_are_foreseen_is_polled_at_their_end(
    stub, make_poller
):
    gate, poller, t = foreseeing(stub, make_poller)
    stub.add(2, server_id="b", status="queued", created_at=CREATED)
    stub.add(3, server_id="c", status="accepted", created_at=CREATED)
    for server in "abcd":      # d: requested, but no record yet
        poller.watch(server, "host1", LIVE, accepted_at=ACCEPTED)

    gate.poll(t + 0.25)   # first seen: one runs, the others wait behind

    # The end is foreseen at t + 3 s: no poll at every interval before it
    # (nor at the interval times the quiet factor: 1.25 s later)...
    assert not gate.arrive(t + 1.4, patience=0.3)
    # ... and one when it comes (with the margin of a queue behind it).
    gate.poll(t + 3.0 + schedule_mod.END_MARGIN_QUEUED)


def test_a_host_with_only_queued_migrations_is_polled_at_the_interval(
    stub, make_poller
):
    clock = ManualClock()
    gate = Turnstile(stub, clock)
    poller = make_poller(gate, clock=clock, poll_interval=0.25,
                         poll_interval_min=0.01)
    poller._durations.average[("*", LIVE)] = 3.0
    stub.add(1, server_id="a", status="queued", created_at=CREATED)
    poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED)
    t = clock.now

    gate.poll(t + 0.25)

    # Nothing says when Nova lets it start: the interval applies.
    gate.poll(t + 0.5)


def test_a_cold_move_beside_a_foreseen_migration_is_polled_at_the_interval(
    stub, make_poller
):
    gate, poller, t = foreseeing(stub, make_poller)
    stub.add(2, server_id="b", status="accepted", created_at=CREATED,
             migration_type="migration")
    poller.watch("a", "host1", LIVE, accepted_at=ACCEPTED)
    poller.watch("b", "host1", "migration", accepted_at=ACCEPTED)

    gate.poll(t + 0.25)

    # Nova does not queue a cold move behind the live migration.
    gate.poll(t + 0.5)


# -- backing off while nothing changes --------------------------------------

#: The poll interval of these tests: a power of two, so that the times add
#: up exactly.
U = 1 / 64


def quiet_host(stub, make_poller, **options):
    """A poller (polls U apart, up to 8 U while nothing changes) watching
    one running migration whose end nothing foretells; the turnstile, the
    poller and the time."""
    clock = ManualClock()
    gate = Turnstile(stub, clock)
    options.setdefault("poll_interval_max", 8 * U)
    poller = make_poller(gate, clock=clock, poll_interval=U,
                         poll_interval_min=U / 8, **options)
    stub.add(1, status="running", created_at=CREATED)
    return gate, poller, clock.now


def test_a_host_whose_migrations_do_not_change_is_polled_less_and_less(
    stub, make_poller
):
    gate, poller, t = quiet_host(stub, make_poller)
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    gate.poll(t + U)             # first seen: a change
    gate.poll(t + 2 * U)         # the same: the next poll 2 U later
    assert not gate.arrive(t + 3.5 * U, patience=0.3)
    gate.poll(t + 4 * U)         # ... then 4 U
    gate.poll(t + 8 * U)         # ... then 8 U, the longest
    gate.poll(t + 16 * U)
    gate.poll(t + 24 * U)

    assert len(stub.listed) == 6


def test_without_a_longest_interval_the_polls_keep_the_interval(
    stub, make_poller
):
    gate, poller, t = quiet_host(stub, make_poller, poll_interval_max=None)
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)

    for poll in range(1, 6):
        gate.poll(t + poll * U)


def test_a_change_brings_the_interval_back(stub, make_poller):
    gate, poller, t = quiet_host(stub, make_poller)
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    for at in (1, 2, 4, 8):
        gate.poll(t + at * U)

    # Nova updated the record (progress, or a new status).
    stub.set(1, updated_at="2026-01-01T00:00:12")
    gate.poll(t + 16 * U)

    gate.poll(t + 17 * U)


def test_a_new_migration_on_the_host_brings_the_interval_back(
    stub, make_poller
):
    gate, poller, t = quiet_host(stub, make_poller)
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    for at in (1, 2, 4, 8):
        gate.poll(t + at * U)
    gate.clock.set(t + 10 * U)

    poller.watch("other", "host1", LIVE, accepted_at=ACCEPTED)

    gate.poll(t + 11 * U)


def test_the_completion_timeout_fires_on_time_while_backing_off(
    stub, make_poller
):
    gate, poller, t = quiet_host(stub, make_poller)
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED,
                 timeouts=poller_mod.Timeouts(completion=5.5 * U))
    for at in (1, 2, 4):
        gate.poll(t + at * U)
    assert stub.aborted == []

    # Backing off, the next poll would come at 8 U; the timeout runs out at
    # 6.5 U (5.5 U after the migration was first seen running).
    gate.poll(t + 6.75 * U)

    wait_until(lambda: stub.aborted == [("srv", 1)], "the abort")


def test_an_abort_brings_the_interval_back(stub, make_poller):
    gate, poller, t = quiet_host(stub, make_poller)
    poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED)
    for at in (1, 2, 4):
        gate.poll(t + at * U)
    gate.clock.set(t + 5 * U)

    assert poller.abort_all("stopping") == 1
    gate.poll(t + 5 * U)         # at once, to see the abort taken

    # Then as after a change (2 U: the poll at once saw none), not 8 U.
    gate.poll(t + 7 * U)
    wait_until(lambda: stub.aborted == [("srv", 1)], "the abort")


def test_the_progress_timeout_fires_on_time_while_backing_off(
    stub, make_poller
):
    gate, poller, t = quiet_host(stub, make_poller,
                                 poll_interval_max=16 * U,
                                 progress_interval=8 * U)
    stub.progress = [progress(1, 100)]
    watch = poller.watch("srv", "host1", LIVE, accepted_at=ACCEPTED,
                         timeouts=poller_mod.Timeouts(progress=3 * U))
    # Another one queued behind it: not the run's only migration, which
    # would be sampled at every poll to foresee its end.
    stub.add(2, server_id="next", status="queued", created_at=CREATED)
    poller.watch("next", "host1", LIVE, accepted_at=ACCEPTED)
    for at in (1, 2, 4, 8):
        gate.poll(t + at * U)
    gate.poll(t + 9 * U)         # the first progress sample
    assert watch.last_progress == (100, t + 9 * U)
    assert stub.aborted == []

    # Backing off, the next poll would come at 17 U (the next sample) or
    # 25 U; no progress for 3 U runs out at 12 U.
    gate.poll(t + 12.25 * U)

    wait_until(lambda: stub.aborted == [("srv", 1)], "the abort")
    assert "no progress" in (watch.timed_out or "")
