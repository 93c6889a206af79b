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
"""The throttle: slots per source host and kind of move, under a cap."""

import threading
import time

import pytest

from nova_migrate_flows.execution import throttle as throttle_mod
from tests.unit.execution.conftest import wait_until

LIVE, COLD = throttle_mod.LIVE, throttle_mod.COLD


@pytest.fixture
def throttle() -> throttle_mod.Throttle:
    """Two live and one cold move per host, five in all."""
    return throttle_mod.Throttle({LIVE: 2, COLD: 1}, total=5)


def try_acquire(throttle, key, host, kind=LIVE):
    """Take a slot if one is free now, without waiting."""
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 1

    return throttle.acquire(key, host, kind, should_stop=should_stop,
                            poll=0.001)


class Waiter(threading.Thread):
    """A task thread blocked on the throttle until it gets a slot."""

    def __init__(self, throttle, key, host, kind=LIVE, poll=60.0,
                 exclusive=(), order=0):
        super().__init__(daemon=True)
        self.throttle, self.key, self.host, self.kind = (
            throttle, key, host, kind)
        self.poll = poll
        self.exclusive = exclusive
        self.order = order
        self.stop = threading.Event()
        self.got: bool | None = None
        self.start()

    def run(self) -> None:
        self.got = self.throttle.acquire(
            self.key, self.host, self.kind,
            should_stop=self.stop.is_set, poll=self.poll,
            exclusive=self.exclusive, order=self.order,
        )


def test_slots_per_host_and_kind(throttle):
    assert try_acquire(throttle, "a", "host1")
    assert try_acquire(throttle, "b", "host1")
    assert not try_acquire(throttle, "c", "host1")
    assert try_acquire(throttle, "d", "host1", COLD)
    assert not try_acquire(throttle, "e", "host1", COLD)
    assert try_acquire(throttle, "f", "host2")

    assert throttle.held("host1") == 3
    assert throttle.held("host2") == 1
    assert throttle.held() == 4


def test_the_total_caps_every_host(throttle):
    for i, host in enumerate(["h1", "h1", "h2", "h2", "h3"]):
        assert try_acquire(throttle, f"s{i}", host)

    assert not try_acquire(throttle, "s5", "h4")
    assert not try_acquire(throttle, "s6", "h4", COLD)
    assert throttle.held() == 5


def test_taking_a_slot_again_is_a_no_op(throttle):
    assert try_acquire(throttle, "a", "host1")
    assert throttle.acquire("a", "host1", LIVE,
                            should_stop=lambda: True)

    assert throttle.held() == 1
    assert try_acquire(throttle, "b", "host1")


def test_a_stopped_run_takes_no_slot(throttle):
    assert not throttle.acquire("a", "host1", LIVE,
                                should_stop=lambda: True)

    assert throttle.held() == 0


def test_release_wakes_a_waiter_at_once(throttle):
    try_acquire(throttle, "a", "host1")
    try_acquire(throttle, "b", "host1")
    waiter = Waiter(throttle, "c", "host1")
    assert waiter.is_alive()

    throttle.release("a")
    waiter.join(timeout=5)

    assert waiter.got is True
    assert throttle.held("host1") == 2


def test_release_of_another_host_does_not_let_a_waiter_in(throttle):
    try_acquire(throttle, "a", "host1")
    try_acquire(throttle, "b", "host1")
    try_acquire(throttle, "x", "host2")
    waiter = Waiter(throttle, "c", "host1", poll=0.005)

    throttle.release("x")
    waiter.join(timeout=0.05)

    assert waiter.is_alive()
    waiter.stop.set()
    waiter.join(timeout=5)
    assert waiter.got is False


def test_a_release_wakes_only_the_waiters_of_its_host():
    # 200 hosts drain at once: a slot given back on one must not wake the
    # waiters of all the others (they would each look and sleep again).
    throttle = throttle_mod.Throttle({LIVE: 1}, total=1000)
    looked = []

    def should_stop() -> bool:
        looked.append(True)
        return False

    try_acquire(throttle, "x", "host2")
    waiter = threading.Thread(target=throttle.acquire, daemon=True, args=(
        "y", "host2", LIVE), kwargs={"should_stop": should_stop,
                                     "poll": 60.0})
    waiter.start()
    wait_until(lambda: throttle.waiting("host2", LIVE) == 1 and looked,
               "the move of host2 waiting")

    for turn in range(20):
        try_acquire(throttle, f"a{turn}", "host1")
        throttle.release(f"a{turn}")
        time.sleep(0.005)  # time for a waiter woken to look
    throttle.release("x")
    waiter.join(timeout=5)

    # Once as it began to wait, once when host2's slot came back.
    assert len(looked) == 2
    assert throttle.held("host2") == 1


def test_two_slots_of_one_exclusive_group_are_never_held(throttle):
    assert throttle.acquire("a", "host1", LIVE, exclusive=["g1"])
    # Another host, with room: only the group keeps it waiting.
    waiter = Waiter(throttle, "b", "host2", poll=0.005, exclusive=["g1"])
    waiter.join(timeout=0.05)
    assert waiter.is_alive()
    assert try_acquire(throttle, "c", "host2")  # not in the group

    throttle.release("a")
    waiter.join(timeout=5)

    assert waiter.got is True
    assert not throttle.acquire("d", "host3", LIVE, exclusive=["g2", "g1"],
                                should_stop=lambda: True)
    throttle.release("b")
    assert try_acquire(throttle, "d", "host3")


def test_an_adopted_migration_holds_its_group(throttle):
    throttle.claim("a", "host1", LIVE, exclusive=["g1"])

    assert not throttle.acquire("b", "host2", LIVE, exclusive=["g1"],
                                should_stop=lambda: True)


def test_release_of_a_key_without_a_slot_is_harmless(throttle):
    try_acquire(throttle, "a", "host1")

    throttle.release("nobody")
    throttle.release("a")
    throttle.release("a")

    assert throttle.held() == 0


def test_claim_counts_an_adopted_migration_beyond_the_limit(throttle):
    try_acquire(throttle, "a", "host1")
    try_acquire(throttle, "b", "host1")

    throttle.claim("adopted", "host1", LIVE)

    assert throttle.held("host1") == 3
    throttle.release("a")
    assert not try_acquire(throttle, "c", "host1")
    throttle.release("adopted")
    assert try_acquire(throttle, "c", "host1")


def test_slots_ahead_open_once_nova_s_compute_holds_a_migration():
    throttle = throttle_mod.Throttle({LIVE: 1, COLD: 1}, total=10,
                                     ahead={LIVE: 2})
    assert try_acquire(throttle, "a", "host1")
    # Nova's conductor may still be checking "a": nothing more for host1.
    assert not try_acquire(throttle, "b", "host1")
    waiter = Waiter(throttle, "b", "host1")
    assert try_acquire(throttle, "x", "host2")

    throttle.handed("host1", COLD)  # another kind opens nothing
    waiter.join(timeout=0.05)
    assert waiter.is_alive()
    throttle.handed("host1", LIVE)
    waiter.join(timeout=5)

    assert waiter.got is True
    assert try_acquire(throttle, "c", "host1")
    assert not try_acquire(throttle, "d", "host1")
    assert not try_acquire(throttle, "y", "host2")
    assert throttle.held("host1") == 3


def test_slots_ahead_stay_open_on_a_host_once_opened():
    throttle = throttle_mod.Throttle({LIVE: 1}, total=10, ahead={LIVE: 1})
    throttle.handed("host1", LIVE)
    throttle.handed("host1", LIVE)
    for key in ("a", "b"):
        assert try_acquire(throttle, key, "host1")
    throttle.release("a")
    throttle.release("b")

    assert try_acquire(throttle, "c", "host1")
    assert try_acquire(throttle, "d", "host1")
    assert not try_acquire(throttle, "e", "host1")


def test_moves_waiting_on_a_host_take_slots_in_their_order():
    throttle = throttle_mod.Throttle({LIVE: 1}, total=10)
    assert try_acquire(throttle, "first", "host1")
    waiters = {}
    for order in (3, 1, 2):
        waiters[order] = Waiter(throttle, f"s{order}", "host1", order=order)
        wait_until(lambda: throttle.waiting("host1", LIVE) == len(waiters),
                   "the waiter to wait")
    # Another host's waiters are in another line.
    assert try_acquire(throttle, "other", "host2")

    taken = []
    holder = "first"
    for _ in range(3):
        throttle.release(holder)
        wait_until(lambda: any(w.got for w in waiters.values()
                               if w.order not in taken), "a slot taken")
        (order,) = [o for o, w in waiters.items()
                    if w.got and o not in taken]
        taken.append(order)
        holder = f"s{order}"

    assert taken == [1, 2, 3]


def test_a_move_its_group_keeps_waiting_does_not_hold_up_the_line():
    throttle = throttle_mod.Throttle({LIVE: 1}, total=10)
    assert throttle.acquire("member", "host2", LIVE, exclusive=["g"])
    grouped = Waiter(throttle, "grouped", "host1", order=0,
                     exclusive=["g"], poll=0.005)
    wait_until(lambda: throttle.waiting("host1", LIVE) == 1, "a waiter")

    later = Waiter(throttle, "later", "host1", order=1)
    later.join(timeout=5)

    assert later.got is True
    assert grouped.is_alive()
    grouped.stop.set()
    grouped.join(timeout=5)
    assert grouped.got is False
    assert throttle.waiting("host1", LIVE) == 0


def test_wake_lets_waiters_see_the_stop(throttle):
    try_acquire(throttle, "a", "host1", COLD)
    waiters = [Waiter(throttle, f"w{i}", "host1", COLD) for i in range(3)]

    for waiter in waiters:
        waiter.stop.set()
    throttle.wake()

    for waiter in waiters:
        waiter.join(timeout=5)
    assert [w.got for w in waiters] == [False, False, False]
    assert throttle.held() == 1


def test_every_waiter_gets_a_slot_in_the_end(throttle):
    one = throttle_mod.Throttle({LIVE: 1, COLD: 1}, total=1)
    holders: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(key: str) -> None:
        one.acquire(key, "host1", LIVE, poll=0.01)
        with lock:
            holders.append((key, one.held()))
        one.release(key)

    threads = [threading.Thread(target=work, args=(f"s{i}",))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    wait_until(lambda: len(holders) == 8, "every waiter to get a slot")
    assert sorted(holders) == [(f"s{i}", 1) for i in range(8)]
    assert one.held() == 0
