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
"""Reads of servers after their moves, batched."""

import concurrent.futures
import datetime
import threading
from typing import Any

import pytest

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.execution import reads


class CountingCloud(fake.FakeCompute):
    """The in-memory cloud, counting the reads of servers."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.singles: list[str] = []
        self.batched: list[str] = []
        self.batch_error: Exception | None = None

    def get_server(self, server_id: str) -> models.Server:
        self.singles.append(server_id)
        return super().get_server(server_id)

    def list_changed_servers(self, since: str) -> list[models.Server]:
        self.batched.append(since)
        if self.batch_error is not None:
            raise self.batch_error
        return super().list_changed_servers(since)


@pytest.fixture
def cloud() -> CountingCloud:
    return CountingCloud(["host1", "host2", "host3"], steps=1)


def moved(cloud: CountingCloud, count: int) -> tuple[list[str],
                                                     datetime.datetime]:
    """``count`` servers that changed after the returned moment."""
    since = datetime.datetime.fromisoformat(cloud._clock.isoformat())
    servers = [cloud.add_server("host1") for _ in range(count)]
    for server in servers:
        cloud.stop_server(server.id)
    cloud.advance()
    return [s.id for s in servers], since


def read_together(server_reads: reads.ServerReads, ids: list[str],
                  since: datetime.datetime) -> list[models.Server]:
    """Read ``ids`` from as many threads, all at once."""
    barrier = threading.Barrier(len(ids))

    def read(server_id: str) -> models.Server:
        barrier.wait()
        return server_reads.get(server_id, since)

    with concurrent.futures.ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(read, ids))


def test_reads_that_come_together_are_one_request(cloud):
    ids, since = moved(cloud, 3)
    server_reads = reads.ServerReads(cloud)

    found = read_together(server_reads, ids, since)

    assert [s.id for s in found] == ids
    assert all(s.status == "SHUTOFF" and not s.task_state for s in found)
    assert len(cloud.batched) == 1 and cloud.singles == []
    assert server_reads.batches == 1


def test_a_read_alone_is_a_read_of_that_server(cloud):
    ids, since = moved(cloud, 1)
    server_reads = reads.ServerReads(cloud)

    assert server_reads.get(ids[0], since).id == ids[0]
    assert server_reads.get(ids[0]).id == ids[0]

    assert cloud.batched == [] and cloud.singles == ids * 2


def test_reads_wait_for_others_while_moves_run(cloud):
    ids, since = moved(cloud, 2)
    running = threading.Event()
    running.set()
    server_reads = reads.ServerReads(cloud, busy=running.is_set,
                                     gather_max=5.0)
    results: list[models.Server] = []
    first = threading.Thread(
        target=lambda: results.append(server_reads.get(ids[0], since)))
    first.start()
    first.join(0.5)
    # The first read waits: another move is still running.
    assert first.is_alive() and cloud.batched == []

    second = server_reads.get(ids[1], since)
    running.clear()
    first.join(5.0)

    assert not first.is_alive()
    assert {results[0].id, second.id} == set(ids)
    assert len(cloud.batched) == 1 and cloud.singles == []


def test_a_server_the_batch_misses_is_read_on_its_own(cloud):
    ids, since = moved(cloud, 2)
    later = since + datetime.timedelta(days=1)
    server_reads = reads.ServerReads(cloud)

    # Nova's clock said the servers changed before the moment asked for.
    found = read_together(server_reads, ids, later)

    assert [s.id for s in found] == ids
    assert len(cloud.batched) == 1 and sorted(cloud.singles) == sorted(ids)


def test_a_failed_batch_reads_each_server_and_a_gone_one_is_not_found(
        cloud):
    ids, since = moved(cloud, 2)
    cloud.batch_error = exceptions.NovaUnavailable("nova-api is down")
    server_reads = reads.ServerReads(cloud)

    found = read_together(server_reads, ids, since)
    assert [s.id for s in found] == ids
    assert sorted(cloud.singles) == sorted(ids)

    cloud.delete_server(ids[0])
    cloud.batch_error = None
    with pytest.raises(exceptions.NotFound):
        read_together(server_reads, ids, since)
