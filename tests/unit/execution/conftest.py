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
"""Fixtures of the engine tests: clocks and computes the tests control."""

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nova_migrate_flows import constants
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import poller as poller_mod

#: How long a test waits for the poller thread before it calls it stuck:
#: only a bound for a stuck thread, generous for a loaded machine.
PATIENCE = 60.0


def deadline(seconds: float = PATIENCE) -> Callable[[], bool]:
    """A ``should_stop`` that says stop after ``seconds``."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (a few seconds at most) for another thread to make it true."""
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class ManualClock:
    """A monotonic clock that moves only when the test moves it.

    It counts the times the poller's loop looked at it: the loop does so
    once it is done with a poll, before it waits for the next one.
    """

    def __init__(self, now: float = 1000.0):
        self.now = now
        self.loop_reads = 0

    def __call__(self) -> float:
        if sys._getframe(1).f_code.co_name == "_run":
            self.loop_reads += 1
        return self.now

    def set(self, now: float) -> None:
        assert now >= self.now, "a monotonic clock never goes back"
        self.now = now


class StubCompute:
    """A compute whose migration records the test writes, one by one.

    ``list_migrations`` answers ``records`` (filtered by source host),
    ``server_migrations`` answers ``progress``; aborts and force-completes
    are recorded and refused with ``refuse`` when it is set.
    """

    def __init__(self) -> None:
        self.records: list[models.Migration] = []
        self.progress: list[models.Migration] = []
        self.listed: list[dict[str, Any]] = []
        self.aborted: list[tuple[str, int]] = []
        self.force_completed: list[tuple[str, int]] = []
        self.refuse: Exception | None = None
        #: Raised by ``list_migrations`` for ``failing_host`` (or any host).
        self.failure: Exception | None = None
        self.failing_host: str | None = None

    def add(self, migration_id: int, server_id: str = "srv", **fields: Any
            ) -> models.Migration:
        record = models.Migration(
            id=migration_id, server_id=server_id,
            status=fields.pop("status", "accepted"),
            migration_type=fields.pop("migration_type",
                                      constants.LIVE_MIGRATION),
            source_compute=fields.pop("source_compute", "host1"),
            dest_compute=fields.pop("dest_compute", "host2"),
            created_at=fields.pop("created_at", "2026-01-01T00:00:10"),
            updated_at=fields.pop("updated_at", "2026-01-01T00:00:10"),
            **fields,
        )
        self.records.insert(0, record)
        return record

    def set(self, migration_id: int, **fields: Any) -> None:
        self.records = [
            dataclasses.replace(r, **fields) if r.id == migration_id else r
            for r in self.records
        ]

    def list_migrations(self, **filters: Any) -> list[models.Migration]:
        self.listed.append(filters)
        host = filters.get("source_compute")
        if self.failure is not None and self.failing_host in (None, host):
            raise self.failure
        return [r for r in self.records
                if host is None or r.source_compute == host]

    def server_migrations(self, server_id: str) -> list[models.Migration]:
        return [r for r in self.progress if r.server_id == server_id]

    def abort_migration(self, server_id: str, migration_id: int) -> None:
        self.aborted.append((server_id, migration_id))
        if self.refuse is not None:
            raise self.refuse

    def force_complete_migration(self, server_id: str, migration_id: int
                                 ) -> None:
        self.force_completed.append((server_id, migration_id))
        if self.refuse is not None:
            raise self.refuse


class Turnstile:
    """Lets the poller's reads of migrations through one at a time.

    Wraps a compute: each ``list_migrations`` waits at the turnstile until
    the test lets it through, and the test moves the clock only while the
    poller waits, so it knows the time the poller sees before and after
    each poll. The poller polls only when its clock says a poll is due:
    ``poll`` and ``arrive`` prove that.
    """

    def __init__(self, compute: Any, clock: ManualClock):
        self.compute = compute
        self.clock = clock
        self._entered = threading.Semaphore(0)
        self._gate = threading.Semaphore(0)
        self._open = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compute, name)

    def list_migrations(self, **filters: Any) -> list[models.Migration]:
        self._entered.release()
        if not self._open:
            self._gate.acquire()
        return self.compute.list_migrations(**filters)

    def arrive(self, at: float, patience: float = PATIENCE) -> bool:
        """Set the clock to ``at``; whether the poller then polls (it has
        finished every earlier poll by then)."""
        self.clock.set(at)
        return self._entered.acquire(timeout=patience)

    def poll(self, at: float, took: float = 0.0) -> None:
        """One poll that starts at ``at`` and takes ``took``; it is over
        when this returns."""
        assert self.arrive(at), f"the poller did not poll at {at}"
        self.clock.set(at + took)
        reads = self.clock.loop_reads
        self._gate.release()
        wait_until(lambda: self.clock.loop_reads > reads, "the poll to end")

    def open(self) -> None:
        """Let every read through from now on."""
        self._open = True
        self._gate.release()


class Run:
    """What the poller's aborts need of a run: its options, and a hook
    before each write (which has nothing to do here)."""

    def __init__(self, conf: Any):
        self.conf = conf

    def before_write(self) -> None:
        pass


@pytest.fixture
def make_poller(conf: Any
                ) -> Iterator[Callable[..., poller_mod.MigrationPoller]]:
    """Start pollers (fast by default) and stop them after the test."""
    started: list[tuple[poller_mod.MigrationPoller, Any]] = []

    def make(compute: Any, start: bool = True, **options: Any
             ) -> poller_mod.MigrationPoller:
        options.setdefault("writer", Run(conf.conf))
        options.setdefault("poll_interval", 0.02)
        options.setdefault("poll_interval_min", 0.005)
        options.setdefault("gather", 0.01)
        poller = poller_mod.MigrationPoller(compute, **options)
        started.append((poller, compute))
        if start:
            poller.start()
        return poller

    yield make
    for poller, compute in started:
        if isinstance(compute, Turnstile):
            compute.open()
        poller.stop()
