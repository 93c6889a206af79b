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
"""Watching moves through Nova's notifications: which notifications end a
move, what the poller does when one arrives, and a bus that does not
answer."""

import contextlib
import datetime
import logging
import os
import socket
import threading
import time

import oslo_messaging
import pytest

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake
from nova_migrate_flows.execution import (
    migrations,
    notifications,
    schedule,
    timeouts,
    watch,
)
from nova_migrate_flows.execution import poller as poller_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from tests.unit.execution.conftest import wait_until


def payload(server_id):
    return {"nova_object.name": "InstanceActionPayload",
            "nova_object.data": {"uuid": server_id, "host": "host1"}}


@pytest.mark.parametrize(("event_type", "ends"), [
    ("instance.live_migration_post.end", True),
    ("instance.live_migration_rollback.end", True),
    ("instance.live_migration_abort.end", True),
    ("instance.resize_finish.end", True),
    ("instance.evacuate", True),
    ("instance.live_migration_pre.error", True),
    ("instance.live_migration_pre.end", False),
    ("instance.live_migration_post.start", False),
    ("service.update", False),
])
def test_which_notifications_end_a_move(event_type, ends):
    assert notifications.is_end(event_type) is ends


def test_the_endpoint_hands_over_starts_and_ends_of_moves():
    told = []
    endpoint = notifications.Endpoint(
        lambda server_id, event, ended: told.append(
            (server_id, event, ended)) or server_id == "watched")

    endpoint.info({}, "nova-compute:host1",
                  "instance.live_migration_pre.end", payload("watched"), {})
    endpoint.info({}, "nova-compute:host2",
                  "instance.live_migration_pre.start", payload("watched"),
                  {})
    endpoint.info({}, "nova-compute:host1",
                  "instance.live_migration_post.end", payload("watched"), {})
    endpoint.info({}, "nova-compute:host1",
                  "instance.live_migration_post.end", payload("other"), {})
    endpoint.error({}, "nova-compute:host1", "instance.resize.error",
                   payload("watched"), {})
    endpoint.info({}, "nova-scheduler:c1", "instance.evacuate",
                  {"no": "payload"}, {})

    assert told == [
        ("watched", "instance.live_migration_pre.start", False),
        ("watched", "instance.live_migration_post.end", True),
        ("other", "instance.live_migration_post.end", True),
        ("watched", "instance.resize.error", True)]
    assert endpoint.ends_seen == 2


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_notified_end_polls_its_host_as_nova_saves_it_and_again():
    clock = Clock()
    poller = poller_mod.MigrationPoller(
        fake.FakeCompute(2), writer=None, poll_interval=30.0,
        poll_interval_min=0.2, clock=clock, wall=clock)
    polled = poller.watch("s1", "host1", "live-migration")
    clock.now += 1.0
    poller._next_poll["host1"] = clock.now + 29.0

    assert poller.notified("s1", "instance.live_migration_pre.start",
                           ended=False)
    assert polled.end_notified is False
    assert poller.notified("s1", "instance.live_migration_post.end")
    assert poller.notified("unknown", "instance.resize_finish.end") is False

    assert poller._next_poll["host1"] == (
        clock.now + poller_mod.END_NOTIFIED_DELAY)
    assert polled.end_notified is True
    # Until its record says it ended, the host is polled at the shortest
    # interval, not the fallback one.
    planned = schedule.Schedule(
        poller._durations, interval=30.0, interval_min=0.2,
        report_progress=False, clock=clock, wall=clock)
    assert planned.due([polled], last_poll=clock.now) == clock.now + 0.2
    quiet = watch.Watch(server_id="s2", host="host1",
                        kind="live-migration", since=polled.since)
    assert planned.due([quiet], last_poll=clock.now) == clock.now + 30.0


def test_a_notified_start_starts_the_timeouts_without_a_read():
    clock = Clock()
    poller = poller_mod.MigrationPoller(
        fake.FakeCompute(2), writer=None, poll_interval=30.0,
        poll_interval_min=0.2, progress_interval=30.0, clock=clock,
        wall=clock, foresee=lambda: False)
    moving = poller.watch(
        "s1", "host1", "live-migration",
        timeouts=timeouts.Timeouts(completion=100.0, progress=60.0))
    first_poll = poller._next_poll["host1"]
    clock.now += 5.0

    assert poller.notified("s1", "instance.live_migration_pre.start",
                           ended=False)

    # Its timeouts count from the notification; no read is due before the
    # first progress sample (the fallback interval apart).
    assert moving.running_since == clock.now
    assert moving.next_progress_at == clock.now + 30.0
    assert poller._next_poll["host1"] == clock.now + 30.0 > first_poll
    assert poller.polls == 0


def test_while_listening_the_poller_does_not_foresee_ends():
    clock = Clock()
    durations = migrations.Durations()
    durations.average[("*", "live-migration")] = 2.0
    running = watch.Watch(server_id="s1", host="host1",
                          kind="live-migration",
                          since=datetime.datetime.now(datetime.UTC))
    running.running_since = clock.now
    listening = threading.Event()

    planned = schedule.Schedule(
        durations, interval=30.0, interval_min=0.2, report_progress=False,
        clock=clock, wall=clock, foresee=lambda: not listening.is_set())
    assert planned.due([running], last_poll=clock.now) == clock.now + 2.05

    listening.set()
    assert planned.due([running], last_poll=clock.now) == clock.now + 30.0


def deferring(clock, **options):
    """A poller (not started) that reads a told success within 30 s."""
    return poller_mod.MigrationPoller(
        fake.FakeCompute(2), writer=None, poll_interval=30.0,
        poll_interval_min=0.2, clock=clock, wall=clock,
        foresee=lambda: False, confirm_within=30.0, **options)


def test_a_told_success_gives_its_slot_back_and_is_read_later():
    clock = Clock()
    poller = deferring(clock)
    released = []
    ended = poller.watch("s1", "host1", "live-migration",
                         on_succeeded=lambda w: released.append(w.server_id))
    running = poller.watch("s2", "host2", "live-migration")
    poller._next_poll["host1"] = clock.now + 100.0
    clock.now += 1.0

    assert poller.notified("s1", "instance.live_migration_post.end")

    # The slot comes back once Nova is through with the migration.
    told = clock.now
    poller.start()
    try:
        time.sleep(0.05)
        assert released == []
        clock.now += poller_mod.END_NOTIFIED_DELAY
        with poller._cond:
            poller._cond.notify_all()
        wait_until(lambda: released == ["s1"], "the slot given back")
    finally:
        poller.stop()
    clock.now = told
    assert ended.confirm_at == clock.now + 30.0
    assert poller._next_poll["host1"] == clock.now + 30.0
    assert running.confirm_at is None
    # The host is polled then, not at the shortest interval as an end
    # read at once is, and its progress is no longer sampled.
    planned = schedule.Schedule(
        poller._durations, interval=30.0, interval_min=0.2,
        report_progress=True, clock=clock, wall=clock,
        foresee=lambda: False)
    ended.running_since = clock.now - 5.0
    ended.next_progress_at = clock.now + 1.0
    assert planned.due([ended], last_poll=clock.now - 1.0) == (
        clock.now + 30.0)


@pytest.mark.parametrize(("kind", "event_type"), [
    ("live-migration", "instance.live_migration_rollback.end"),
    ("live-migration", "instance.live_migration_abort.end"),
    ("live-migration", "instance.live_migration_pre.error"),
    ("migration", "instance.resize_finish.end"),
])
def test_a_told_failure_or_cold_end_is_read_at_once(kind, event_type):
    clock = Clock()
    poller = deferring(clock)
    released = []
    ended = poller.watch("s1", "host1", kind,
                         on_succeeded=lambda w: released.append(w))
    poller.watch("s2", "host2", "live-migration")

    assert poller.notified("s1", event_type)

    assert released == []
    assert ended.confirm_at is None
    assert poller._next_poll["host1"] == (
        clock.now + poller_mod.END_NOTIFIED_DELAY)


def one_told_one_running(clock):
    """A deferring poller watching s1 (host1), whose success Nova told,
    and s2 (host2), still running."""
    poller = deferring(clock)
    told = poller.watch("s1", "host1", "live-migration")
    running = poller.watch("s2", "host2", "live-migration")
    poller.notified("s1", "instance.live_migration_post.end")
    return poller, told, running


def test_the_run_s_last_end_has_every_told_success_read_at_once():
    clock = Clock()
    poller, first, last = one_told_one_running(clock)
    clock.now += 10.0

    assert poller.notified("s2", "instance.live_migration_post.end")

    soon = clock.now + poller_mod.END_NOTIFIED_DELAY
    assert first.confirm_at == last.confirm_at == soon
    assert poller._next_poll == {"host1": soon, "host2": soon}


def test_a_host_whose_next_moves_wait_for_them_has_them_read_at_once():
    clock = Clock()
    starving = set()
    poller = deferring(clock, starved=lambda host: host in starving)
    first = poller.watch("s1", "host1", "live-migration")
    other = poller.watch("s2", "host2", "live-migration")
    poller.watch("s3", "host2", "live-migration")
    poller.notified("s1", "instance.live_migration_post.end")
    assert first.confirm_at == clock.now + 30.0

    starving.add("host2")
    clock.now += 2.0
    assert poller.notified("s2", "instance.live_migration_post.end")

    soon = clock.now + poller_mod.END_NOTIFIED_DELAY
    assert first.confirm_at == other.confirm_at == soon
    assert poller._next_poll["host1"] == soon


def test_abort_all_aborts_no_told_success_and_reads_it_now():
    clock = Clock()
    poller, ended, running = one_told_one_running(clock)
    clock.now += 1.0

    assert poller.abort_all("interrupted") == 1

    assert ended.aborting is None and running.aborting == "interrupted"
    assert ended.confirm_at == clock.now
    poller._aborts.shutdown()


def test_runtime_starves_a_host_with_moves_yet_to_start(conf):
    move = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=["h"],
        max_concurrent=1, pipeline_depth=0)
    runtime = runtime_mod.Runtime(conf.conf, fake.FakeCompute(1), move)
    plan = ["a", "b"]

    assert runtime._starved("h") is False   # no plan known yet
    runtime.starts("h", "a", lambda: plan)
    assert runtime._starved("h") is True
    assert runtime.throttle.acquire("a", "h", "live")
    assert runtime._starved("h") is False   # no slot free
    runtime.throttle.release("a")
    runtime.starts("h", "b", lambda: plan)
    assert runtime._starved("h") is False   # nothing left to start


def test_the_fallback_interval_paces_the_polls(conf):
    conf.config(group="watch", source="notifications",
                transport_url="rabbit://guest:guest@127.0.0.1:1/",
                fallback_interval=45)
    move = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=["h"])
    runtime = runtime_mod.Runtime(conf.conf, fake.FakeCompute(1), move)

    assert runtime.listener is not None
    assert runtime.poller._schedule.interval == 45


class Subscription:
    """An oslo.messaging notification listener whose ``start`` blocks
    until the bus answers, as oslo.messaging's does."""

    def __init__(self):
        self.bus_up = threading.Event()
        self.stopped = threading.Event()
        self.calls = []

    def start(self):
        self.bus_up.wait()
        self.calls.append("start")

    def stop(self):
        self.calls.append("stop")

    def wait(self):
        self.calls.append("wait")
        self.stopped.set()


class Bus:
    """What of oslo.messaging's transport the listener uses to delete its
    queue: ``_driver._get_connection()``, a connection with a kombu
    channel."""

    def __init__(self):
        self.deleted = []
        self._driver = self
        self.connection = self
        self.channel = self

    @contextlib.contextmanager
    def _get_connection(self):
        yield self

    def queue_delete(self, queue, nowait=False):
        self.deleted.append((queue, nowait))


@pytest.fixture
def bus():
    return Bus()


@pytest.fixture
def subscription(conf, monkeypatch, bus):
    conf.config(group="watch", source="notifications",
                transport_url="rabbit://guest:guest@127.0.0.1:1/")
    subscribing = Subscription()
    monkeypatch.setattr(oslo_messaging, "get_notification_transport",
                        lambda conf, url: bus)
    monkeypatch.setattr(oslo_messaging, "get_notification_listener",
                        lambda *args, **kwargs: subscribing)
    return subscribing


def started(conf):
    """A listener, started; fails if starting it does not return."""
    listener = notifications.Listener(conf.conf, lambda *args: False,
                                      subscribe_wait=0.01)
    starting = threading.Thread(target=listener.start, daemon=True)
    starting.start()
    starting.join(timeout=5)
    assert not starting.is_alive(), "the run waits for the bus"
    return listener


def test_a_bus_that_does_not_answer_does_not_hold_the_run(
        conf, subscription, caplog):
    caplog.set_level(logging.INFO)
    listener = started(conf)

    assert "does not answer yet: watching the moves by polling" in (
        caplog.text)
    listener.stop()
    assert subscription.calls == []
    # The bus answers after the run ended: the late subscription ends too.
    subscription.bus_up.set()
    assert subscription.stopped.wait(timeout=30)
    assert subscription.calls == ["start", "stop", "wait"]
    assert "Listening" not in caplog.text


def test_a_bus_that_answers_late_is_listened_to(conf, subscription,
                                                caplog):
    caplog.set_level(logging.INFO)
    listener = started(conf)

    subscription.bus_up.set()
    for thread in threading.enumerate():
        if thread.name == "notification-subscriber":
            thread.join(timeout=30)
    assert "Listening to Nova's notifications" in caplog.text
    assert subscription.calls == ["start"]
    listener.stop()
    assert subscription.calls == ["start", "stop", "wait"]


def subscribed(conf):
    """A listener, started and subscribed."""
    listener = started(conf)
    for thread in threading.enumerate():
        if thread.name == "notification-subscriber":
            thread.join(timeout=30)
    assert listener.listening
    return listener


def test_a_stopped_listener_deletes_the_queue_of_its_own_pool(
        conf, subscription, bus):
    subscription.bus_up.set()
    listener = subscribed(conf)
    assert listener.pool.startswith(
        f"nova-migrate-flows-{socket.gethostname()}-{os.getpid()}-")
    assert notifications.Listener(conf.conf, lambda *a: False).pool != (
        listener.pool)

    listener.stop()

    # Nobody would consume it again: RabbitMQ would fill it for ever.
    assert subscription.calls == ["start", "stop", "wait"]
    assert bus.deleted == [(listener.pool, True)]


def test_a_pool_the_operator_named_is_left_on_the_bus(conf, subscription,
                                                       bus):
    conf.config(group="watch", pool="nmf-shared")
    subscription.bus_up.set()
    listener = subscribed(conf)

    listener.stop()

    assert listener.pool == "nmf-shared"
    assert subscription.calls == ["start", "stop", "wait"]
    assert bus.deleted == []
