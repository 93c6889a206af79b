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
"""Throttling of migrations per source host and over a whole run.

Nova runs at most ``max_concurrent_live_migrations`` live migrations per
source host and queues the rest. The throttle hands Nova exactly that many,
plus ``pipeline_depth`` more that wait in Nova's own queue, so the next
migration starts the moment one ends. A slot is taken before a request is
sent and given back when the poller sees the migration end, so that no task
thread has to be free for a slot to come back.

The slots *ahead* (the pipeline's) open on a host only once Nova's compute
holds one of its migrations (the poller saw it queued, running or done):
Nova's conductor checks each request of a host before the compute gets it,
and requests sent together are checked together, which delays the first
of them; one at a time, the first starts as soon as Nova allows and the
ones ahead still wait in Nova's queue before it ends.

The moves waiting for a slot of one host and kind take it in the order
the run gives them (their place in the host's plan), not in the order
their threads wake: the lanes of a host hold different numbers of servers,
and the lane with one more must not be the last to start, or Nova would
sit idle at the end while it moves its last server alone.

A slot may also be taken for *exclusive* groups (the hard anti-affinity
server groups of the server): no two slots of one such group are held at
once, over every host of the run. Nova's scheduler places each move
against the hosts the other members are on at that moment, so two members
moving at once could land on one host; one at a time, each lands where the
policy allows.
"""

import collections
import threading
from collections.abc import Callable, Iterable

LIVE = "live"
COLD = "cold"


class Throttle:
    """Slots per (source host, kind of move), under a global cap.

    :param per_host: the slots of each kind per source host
    :param total: the slots over every host
    :param ahead: the slots of a kind per source host beyond ``per_host``
        that open once Nova's compute holds a migration of that host and
        kind (:meth:`handed`)
    """

    def __init__(self, per_host: dict[str, int], total: int,
                 ahead: dict[str, int] | None = None):
        self._per_host = dict(per_host)
        self._ahead = dict(ahead or {})
        self._total = total
        #: (host, kind) of which Nova's compute held a migration.
        self._handed: set[tuple[str, str]] = set()
        # One lock; the moves waiting for a slot of one host and kind wait
        # on that line's own condition, so that a slot given back wakes the
        # waiters it may let go, not those of every host of the run.
        self._lock = threading.RLock()
        self._lines: dict[tuple[str, str], threading.Condition] = {}
        self._held: dict[str, tuple[str, str]] = {}
        self._counts: collections.Counter[tuple[str, str]] = (
            collections.Counter())
        self._exclusive: dict[str, frozenset[str]] = {}
        #: Per (host, kind), the moves waiting for a slot: their order and
        #: exclusive groups.
        self._waiting: dict[tuple[str, str],
                            dict[str, tuple[int, frozenset[str]]]] = {}

    def _line(self, line: tuple[str, str]) -> threading.Condition:
        cond = self._lines.get(line)
        if cond is None:
            cond = self._lines[line] = threading.Condition(self._lock)
        return cond

    def _wake_every_line(self) -> None:
        for cond in self._lines.values():
            cond.notify_all()

    def _take(self, key: str, line: tuple[str, str]) -> None:
        self._held[key] = line
        self._counts[line] += 1

    def _limit(self, host: str, kind: str) -> int:
        limit = self._per_host[kind]
        if (host, kind) in self._handed:
            limit += self._ahead.get(kind, 0)
        return limit

    def _taken(self, groups: frozenset[str]) -> bool:
        """Whether a slot of one of ``groups`` is held."""
        return any(groups & held for held in self._exclusive.values())

    def _first_in_line(self, key: str, host: str, kind: str) -> bool:
        """Whether ``key`` comes first of the moves waiting for a slot of
        ``host`` and ``kind`` (those that their groups keep waiting
        aside)."""
        waiting = self._waiting[(host, kind)]
        order = waiting[key][0]
        return not any(
            (other_order, other) < (order, key)
            for other, (other_order, groups) in waiting.items()
            if not self._taken(groups)
        )

    def acquire(
        self,
        key: str,
        host: str,
        kind: str,
        should_stop: Callable[[], bool] = lambda: False,
        poll: float = 0.5,
        exclusive: Iterable[str] = (),
        order: int = 0,
    ) -> bool:
        """Take a slot for ``key``; False when ``should_stop`` said so first.

        With ``exclusive`` groups, wait also until no other slot of any of
        them is held. Moves waiting for a slot of one host and kind take
        it by ``order`` (then by key). Taking a slot that ``key`` already
        holds is a no-op (a task that runs again after a resume keeps its
        slot).
        """
        groups = frozenset(exclusive)
        line = (host, kind)
        with self._lock:
            if key in self._held:
                return True
            cond = self._line(line)
            self._waiting.setdefault(line, {})[key] = (order, groups)
            try:
                while True:
                    if should_stop():
                        return False
                    if (
                        self._room(host, kind)
                        and not self._taken(groups)
                        and self._first_in_line(key, host, kind)
                    ):
                        self._take(key, line)
                        if groups:
                            self._exclusive[key] = groups
                        return True
                    cond.wait(poll)
            finally:
                waiting = self._waiting[line]
                del waiting[key]
                if waiting:
                    # The next in line may go now.
                    cond.notify_all()
                else:
                    del self._waiting[line]

    def claim(self, key: str, host: str, kind: str,
              exclusive: Iterable[str] = ()) -> None:
        """Count a migration that Nova runs already (an adopted one), even
        beyond the limit: it holds a slot in Nova whatever we think."""
        with self._lock:
            if key not in self._held:
                self._take(key, (host, kind))
            if exclusive:
                self._exclusive[key] = frozenset(exclusive)

    def handed(self, host: str, kind: str) -> None:
        """Nova's compute holds a migration of ``kind`` off ``host``: open
        the host's slots ahead of that kind."""
        with self._lock:
            if (host, kind) in self._handed:
                return
            self._handed.add((host, kind))
            if self._ahead.get(kind):
                self._line((host, kind)).notify_all()

    def release(self, key: str) -> None:
        """Give ``key``'s slot back (nothing happens if it holds none)."""
        with self._lock:
            groups = self._exclusive.pop(key, None)
            line = self._held.pop(key, None)
            if line is None:
                return
            self._counts[line] -= 1
            if groups or len(self._held) + 1 >= self._total:
                # Waiters of any host may go now: the run's cap, or an
                # exclusive group, held them.
                self._wake_every_line()
            else:
                self._line(line).notify_all()

    def wake(self) -> None:
        """Wake every waiter, so that they look at ``should_stop`` again."""
        with self._lock:
            self._wake_every_line()

    def _room(self, host: str, kind: str) -> bool:
        """Whether a slot of ``host`` and ``kind`` is free, the run's cap
        allowing (lock held)."""
        return (self._counts[(host, kind)] < self._limit(host, kind)
                and len(self._held) < self._total)

    def free(self, host: str, kind: str) -> bool:
        """Whether a slot of ``host`` and ``kind`` is free (the run's cap
        allowing)."""
        with self._lock:
            return self._room(host, kind)

    def waiting(self, host: str, kind: str) -> int:
        """How many moves wait for a slot of ``host`` and ``kind``."""
        with self._lock:
            return len(self._waiting.get((host, kind), ()))

    def held(self, host: str | None = None) -> int:
        with self._lock:
            if host is None:
                return len(self._held)
            return sum(1 for h, _ in self._held.values() if h == host)
