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
"""Every write is sent once: after a lost answer or a 409, the tasks look
at Nova and send a write again only when Nova shows it did not happen.

The in-memory cloud is wrapped so that chosen writes fail: ``before`` (the
answer is lost and Nova never saw the request), ``after`` (Nova did it and
the answer is lost) or ``conflict`` (Nova answers 409 and does nothing).
"""

import collections
import dataclasses
import time
import types
from typing import Any

import pytest

from nova_migrate_flows import exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake, models, nova
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.execution import writes
from nova_migrate_flows.tasks import cold, live, moves, service
from tests.unit.compute.conftest import FakeConnection, ok

BEFORE = "before"
AFTER = "after"
CONFLICT = "conflict"


class Faulty:
    """A fake cloud whose next calls of some methods fail as planned."""

    def __init__(self, cloud: fake.FakeCompute, **plans: list[str]):
        self.cloud = cloud
        self.plans = {name: list(kinds) for name, kinds in plans.items()}
        #: Calls made, by method, the failed ones included.
        self.sent: collections.Counter[str] = collections.Counter()
        #: Reads of migrations to answer with none, as if the conductor
        #: had not recorded the migration yet.
        self.hide_migrations = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.cloud, name)
        if name == "list_migrations":
            return self._list_migrations
        if name not in self.plans:
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self.sent[name] += 1
            kind = self.plans[name].pop(0) if self.plans[name] else None
            if kind == BEFORE:
                raise exceptions.AmbiguousWrite(f"{name}: reset", None)
            if kind == CONFLICT:
                raise exceptions.Conflict(
                    f"{name}: Cannot do it while it is in task_state "
                    "migrating", 409)
            result = method(*args, **kwargs)
            if kind == AFTER:
                raise exceptions.AmbiguousWrite(f"{name}: HTTP 502", 502)
            return result

        return call

    def _list_migrations(self, **filters: Any) -> list[models.Migration]:
        if self.hide_migrations:
            self.hide_migrations -= 1
            return []
        return self.cloud.list_migrations(**filters)

    def effects(self, name: str) -> int:
        """How many calls of ``name`` reached the cloud."""
        return sum(1 for method, _ in self.cloud.writes if method == name)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between attempts; a clock moves by them, and only by them
    (the tests never really wait)."""
    waits: list[float] = []
    clock = [1000.0]

    def wait(seconds: float) -> None:
        clock[0] += seconds

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        wait(seconds)

    monkeypatch.setattr(writes, "time", types.SimpleNamespace(
        monotonic=lambda: clock[0], sleep=sleep))
    # How the tasks wait for Nova's records and states (not counted).
    monkeypatch.setattr(moves, "time", types.SimpleNamespace(
        time=time.time, monotonic=lambda: clock[0], sleep=wait))
    return waits


def runtime_for(conf: Any, compute: Any,
                operation: str = "host-evacuate-live") -> runtime_mod.Runtime:
    request = request_mod.build_request(
        conf.conf, request_mod.Operation(operation), hosts=["host1"])
    if compute is None:
        compute = fake.FakeCompute()
    return runtime_mod.Runtime(conf.conf, compute, request)


def run(conf: Any, compute: Any, operation: str) -> runner_mod.RunResult:
    request = request_mod.build_request(
        conf.conf, request_mod.Operation(operation), hosts=["host1"])
    return runner_mod.Runner(conf.conf, compute).run(request)


# -- the transport ------------------------------------------------------------

def test_keystoneauth_never_repeats_a_write():
    server = "6f1c2d4e-0b8a-4c55-9d1e-2a3b4c5d6e7f"
    connection = FakeConnection()
    connection.compute.route("POST", f"/servers/{server}/action",
                             ok(status=202))
    connection.compute.route("PUT", "/os-services/svc", ok({"service": {
        "id": "svc", "host": "host1", "status": "disabled"}}))
    connection.compute.route("DELETE", f"/servers/{server}/migrations/7",
                             ok(status=202))
    connection.compute.route("GET", f"/servers/{server}/migrations",
                             ok({"migrations": []}))
    compute = nova.NovaCompute(connection, sleep=lambda _: None)

    compute.live_migrate(server, None, "auto")
    compute.update_service("svc", disabled=True)
    compute.abort_migration(server, 7)
    compute.server_migrations(server)

    options = {s.method: s.options for s in connection.compute.sent}
    once = {"connect_retries": 0, "status_code_retries": 0}
    # A cloud may tell keystoneauth to retry; reads are retried anyway.
    assert options == {"POST": once, "PUT": once, "DELETE": once, "GET": {}}


# -- the rule itself ----------------------------------------------------------

def attempts(faults: list[str], done: bool) -> tuple[list[str], Any]:
    """Send a write whose attempts meet ``faults`` in turn; ``done`` says
    whether Nova shows its effect after a lost answer."""
    plan = list(faults)
    log: list[str] = []

    def send() -> str:
        log.append("send")
        fault = plan.pop(0) if plan else None
        if fault in (BEFORE, AFTER):
            raise exceptions.AmbiguousWrite("lost", None)
        if fault == CONFLICT:
            raise exceptions.Conflict("task_state migrating", 409)
        return "sent"

    def look() -> str | None:
        log.append("look")
        return "seen" if done else None

    return log, (send, look)


def test_a_lost_answer_is_looked_into_before_anything_is_resent(conf, slept):
    log, (send, look) = attempts([AFTER], done=True)

    result = writes.send_once(runtime_for(conf, None), "the test", send,
                              look)

    assert (result, log, slept) == ("seen", ["send", "look"], [])


def test_a_write_nova_did_not_do_is_sent_again(conf, slept):
    log, (send, look) = attempts([BEFORE], done=False)

    result = writes.send_once(runtime_for(conf, None), "the test", send,
                              look)

    assert (result, log, slept) == ("sent", ["send", "look", "send"], [])


def test_lost_answers_are_resent_a_bounded_number_of_times(conf, slept):
    log, (send, look) = attempts([BEFORE] * 5, done=False)

    with pytest.raises(exceptions.AmbiguousWrite):
        writes.send_once(runtime_for(conf, None), "the test", send, look)

    assert log.count("send") == writes.AMBIGUOUS_ATTEMPTS


def test_a_409_is_waited_out_with_growing_waits(conf, slept):
    log, (send, look) = attempts([CONFLICT] * 3, done=False)

    result = writes.send_once(runtime_for(conf, None), "the test", send,
                              look)

    assert result == "sent"
    assert log.count("send") == 4
    assert slept == [1.0, 2.0, 4.0]


def test_a_409_that_lasts_fails_after_the_conflict_timeout(conf, slept):
    conf.config(group="nova", conflict_timeout=5)
    log, (send, look) = attempts([CONFLICT] * 10, done=False)

    with pytest.raises(exceptions.OperationFailed, match="kept refusing"):
        writes.send_once(runtime_for(conf, None), "the test", send, look)

    # After 1 + 2 s, a 4 s wait would end past the 5 s.
    assert slept == [1.0, 2.0]
    assert log.count("send") == 3


def test_a_409_for_a_write_nova_did_is_taken_as_done(conf, slept):
    log, (send, look) = attempts([CONFLICT], done=True)

    result = writes.send_once(runtime_for(conf, None), "the test", send,
                              look)

    assert (result, log, slept) == ("seen", ["send", "look"], [])


# -- start and stop -----------------------------------------------------------

POWER = [
    ("start_server", "SHUTOFF", "ACTIVE"),
    ("stop_server", "ACTIVE", "SHUTOFF"),
]


@pytest.mark.parametrize(("write", "now", "was"), POWER,
                         ids=["start", "stop"])
@pytest.mark.parametrize(
    ("faults", "sent"),
    [([AFTER], 1), ([BEFORE], 2), ([CONFLICT], 2), ([BEFORE, AFTER], 2)],
    ids=["done-answer-lost", "not-done", "409", "not-done-then-lost"],
)
def test_power_is_restored_exactly_once(conf, slept, write, now, was,
                                        faults, sent):
    cloud = fake.FakeCompute(2)
    after = cloud.add_server("host2", status=now)
    before = dataclasses.replace(
        after, status=was, host="host1",
        power_state=(models.POWER_STATE_RUNNING if was == "ACTIVE"
                     else models.POWER_STATE_SHUTDOWN))
    faulty = Faulty(cloud, **{write: faults})

    restored = cold.restore_power(runtime_for(conf, faulty), before, after,
                                  timeout=5.0)

    assert restored.status == was
    assert faulty.sent[write] == sent
    assert faulty.effects(write) == 1


# -- confirm and revert -------------------------------------------------------

@pytest.mark.parametrize(
    ("faults", "sent"),
    [([AFTER], 1), ([BEFORE], 2), ([CONFLICT, AFTER], 2)],
    ids=["done-answer-lost", "not-done", "409-then-lost"],
)
def test_a_cold_migration_is_confirmed_once(conf, slept, faults, sent):
    cloud = fake.FakeCompute(4)
    server = cloud.add_server("host1")
    faulty = Faulty(cloud, confirm_resize=faults)

    result = run(conf, faulty, "host-servers-migrate")

    (outcome,) = result.outcomes
    assert outcome["status"] == "migrated"
    assert cloud.servers[server.id].status == "ACTIVE"
    assert cloud.servers[server.id].host == outcome["destination"] != "host1"
    assert faulty.sent["confirm_resize"] == sent
    assert faulty.effects("confirm_resize") == 1
    assert [m.record.status for m in cloud.migrations] == ["confirmed"]


def test_a_confirmation_never_seen_by_nova_is_reverted_safely(conf, slept):
    cloud = fake.FakeCompute(4)
    server = cloud.add_server("host1")
    faulty = Faulty(cloud, confirm_resize=[BEFORE] * writes.AMBIGUOUS_ATTEMPTS,
                    revert_resize=[AFTER])

    result = run(conf, faulty, "host-servers-migrate")

    (outcome,) = result.outcomes
    assert outcome["status"] == "failed"
    assert faulty.effects("confirm_resize") == 0
    assert faulty.sent["revert_resize"] == faulty.effects("revert_resize") == 1
    after = cloud.servers[server.id]
    assert (after.host, after.status) == ("host1", "ACTIVE")
    assert [m.record.status for m in cloud.migrations] == ["reverted"]


# -- services -----------------------------------------------------------------

def test_the_compute_service_is_changed_once_per_step(conf, slept):
    cloud = fake.FakeCompute(4)
    cloud.add_server("host1")
    # Disabling: done, answer lost. Leaving it disabled: not done, then ok.
    faulty = Faulty(cloud, update_service=[AFTER, BEFORE])

    result = run(conf, faulty, "host-evacuate-live")

    assert [o["status"] for o in result.outcomes] == ["migrated"]
    assert faulty.sent["update_service"] == 3
    assert faulty.effects("update_service") == 2
    host1 = cloud.services["host1"]
    assert host1.status == "disabled"
    assert host1.disabled_reason.startswith(
        "nova-migrate-flows: evacuated by host-evacuate-live")
    (host,) = result.hosts
    assert host["service"] == "disabled"


def test_a_service_change_nova_shows_is_not_resent(conf, slept):
    cloud = fake.FakeCompute(2)
    faulty = Faulty(cloud, update_service=[AFTER])
    runtime = runtime_for(conf, faulty)

    service.update_service(runtime, "host1", cloud.services["host1"].id,
                           forced_down=True)

    assert cloud.services["host1"].forced_down is True
    assert faulty.sent["update_service"] == 1


# -- moves and aborts ---------------------------------------------------------

def test_a_move_whose_record_comes_late_is_adopted(conf, slept):
    cloud = fake.FakeCompute(4)
    server = cloud.add_server("host1")
    faulty = Faulty(cloud, live_migrate=[AFTER])
    # The answer is lost, and the conductor records the migration a moment
    # after Nova marked the server busy.
    faulty.hide_migrations = 2

    result = run(conf, faulty, "host-evacuate-live")

    assert [o["status"] for o in result.outcomes] == ["migrated"]
    assert faulty.sent["live_migrate"] == faulty.effects("live_migrate") == 1
    assert cloud.servers[server.id].host != "host1"


def moved_there_and_back(cloud: fake.FakeCompute) -> models.Server:
    """A server of host1 live-migrated to host2 and back: the record of
    its first move is host1's, older than the server's last change."""
    server = cloud.add_server("host1")
    for target in ("host2", "host1"):
        cloud.live_migrate(server.id, target, "auto")
        while cloud.migrations[-1].record.status != "completed":
            cloud.advance()
    return cloud.servers[server.id]


def test_a_busy_server_is_not_given_an_earlier_move_s_record(conf, slept):
    """Resuming a move Nova took but has not recorded yet: the server is
    busy, and the only record of its host is of an earlier move."""
    cloud = fake.FakeCompute(4)
    planned = moved_there_and_back(cloud)
    cloud._update_server(planned.id, task_state="migrating")
    task = live.LiveMigrateServer(planned.id)

    found = task.find_existing(runtime_for(conf, cloud), planned,
                               {"server": planned.to_dict()})

    assert found is None


def test_a_busy_server_is_given_the_record_of_the_move_since(conf, slept):
    cloud = fake.FakeCompute(4)
    planned = moved_there_and_back(cloud)
    cloud.live_migrate(planned.id, "host3", "auto")
    task = live.LiveMigrateServer(planned.id)

    found = task.find_existing(runtime_for(conf, cloud), planned,
                               {"server": planned.to_dict()})

    assert found is not None
    assert found.id == cloud.migrations[-1].record.id
    assert (found.source_compute, found.dest_compute) == ("host1", "host3")


def test_a_move_under_way_as_the_plan_was_made_is_adopted(conf, slept):
    cloud = fake.FakeCompute(4)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id].live = "hang"
    cloud.live_migrate(server.id, "host2", "auto")
    cloud.advance()
    # Nova saves the server as the migration runs (its progress): the
    # plan reads it changed after the record was made.
    cloud._now()
    cloud._update_server(server.id)
    planned = cloud.servers[server.id]
    task = live.LiveMigrateServer(server.id)

    found = task.find_existing(runtime_for(conf, cloud), planned,
                               {"server": planned.to_dict(), "adopt": True})

    assert found is not None
    assert found.id == cloud.migrations[-1].record.id


@pytest.mark.parametrize(("faults", "sent"), [([AFTER], 1), ([BEFORE], 2)],
                         ids=["done-answer-lost", "not-done"])
def test_a_live_migration_is_aborted_once(conf, slept, faults, sent):
    cloud = fake.FakeCompute(4)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id].live = "hang"
    cloud.live_migrate(server.id, None, "auto")
    cloud.advance()
    faulty = Faulty(cloud, abort_migration=faults)
    task = live.LiveMigrateServer(server.id)

    task.undo(runtime_for(conf, faulty), server.id, {}, [])

    assert faulty.sent["abort_migration"] == sent
    assert faulty.effects("abort_migration") == 1
    assert [a.action for a in cloud.instance_actions(server.id)].count(
        "live_migration_cancel") == 1
    cloud.advance()
    assert [m.record.status for m in cloud.migrations] == ["cancelled"]
    assert cloud.servers[server.id].host == "host1"
