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
"""The one way to abort: did Nova take it, and the lanes the poller's
aborts are sent on (the poller's tests abort through it against a cloud,
the tests of writes through a task's revert)."""

import threading

from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.execution import aborts
from tests.unit.execution.conftest import PATIENCE, wait_until


def test_one_host_s_aborts_go_in_order_and_others_do_not_wait_for_them():
    lanes = aborts.AbortLanes(lanes=2)
    let_go = threading.Event()
    sent: list[str] = []

    def held() -> None:
        let_go.wait(PATIENCE)
        sent.append("host1 first")

    lanes.submit("host1", held)
    lanes.submit("host1", lambda: sent.append("host1 second"))
    lanes.submit("host2", lambda: sent.append("host2"))
    wait_until(lambda: sent == ["host2"], "host2's abort")
    let_go.set()
    lanes.shutdown()

    assert sent == ["host2", "host1 first", "host1 second"]


def test_a_failing_abort_does_not_stop_its_lane():
    lanes = aborts.AbortLanes(lanes=1)
    sent: list[str] = []

    def broken() -> None:
        raise RuntimeError("bug")

    lanes.submit("host1", broken)
    lanes.submit("host1", lambda: sent.append("next"))
    lanes.shutdown()
    lanes.submit("host1", lambda: sent.append("after a shutdown"))
    lanes.shutdown()

    assert sent == ["next", "after a shutdown"]


def test_an_abort_is_taken_once_nova_records_it_or_the_migration_ends():
    cloud = fake.FakeCompute(["host1", "host2"], steps=2)
    server = cloud.add_server("host1")
    cloud.behaviours[server.id].live = "hang"
    cloud.live_migrate(server.id, "host2", "auto")
    cloud.advance()
    (migration,) = cloud.server_migrations(server.id)

    assert aborts.abort_taken(cloud, server.id, migration.id) is None
    # Nova records the action as it takes the request.
    cloud.actions[server.id].insert(0, models.InstanceAction(
        action=aborts.ABORT_ACTION, request_id="req-abort",
        start_time=None, message=None))
    assert aborts.abort_taken(cloud, server.id, migration.id) is True
    cloud.actions[server.id].pop(0)
    cloud.abort_migration(server.id, migration.id)
    assert aborts.abort_taken(cloud, server.id, migration.id) is True
