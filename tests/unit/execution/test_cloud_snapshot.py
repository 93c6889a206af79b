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
"""The cloud as a run reads it once: :class:`CloudSnapshot`."""

import concurrent.futures
import threading
from typing import Any

from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.execution import runtime


class MeetingCloud(fake.FakeCompute):
    """Reads of capacities and of server groups that each wait until the
    other one is being read too."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.meeting = threading.Barrier(2, timeout=5)
        self.reads: list[str] = []

    def host_capacities(self) -> dict[str, models.HostCapacity]:
        self.reads.append("capacities")
        self.meeting.wait()
        return super().host_capacities()

    def list_server_groups(self) -> list[models.ServerGroup]:
        self.reads.append("groups")
        self.meeting.wait()
        return super().list_server_groups()


def test_different_things_are_read_at_once_and_each_once():
    cloud = MeetingCloud(["host1", "host2"])
    snapshot = runtime.CloudSnapshot(cloud)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        reads = [pool.submit(snapshot.capacities),
                 pool.submit(snapshot.server_groups),
                 pool.submit(snapshot.capacities),
                 pool.submit(snapshot.server_groups)]
        results = [r.result(10) for r in reads]

    # One read serialised behind the other would break the barrier.
    assert set(results[0]) == {"host1", "host2"}
    assert results[0] is results[2] and results[1] is results[3]
    assert sorted(cloud.reads) == ["capacities", "groups"]
