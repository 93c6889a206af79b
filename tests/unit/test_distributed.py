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
"""Distributed mode on a real Redis jobboard, with the in-memory cloud.

Needs a Redis server: ``NMF_TEST_REDIS_URL`` (``.ci/run`` starts one).
"""

import threading
import time
import urllib.parse

import pytest

from nova_migrate_flows import constants
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.engine import conductor as conductor_mod
from nova_migrate_flows.engine import jobboard, persistence, records
from nova_migrate_flows.engine import runner as runner_mod
from tests import external

pytestmark = pytest.mark.redis


@pytest.fixture
def distributed(conf, tmp_path):
    parsed = urllib.parse.urlparse(external.address("redis"))
    conf.config(state_dir=str(tmp_path))
    conf.config(group="jobboard", redis_host=parsed.hostname,
                redis_port=parsed.port or 6379,
                redis_db=int((parsed.path or "/0").strip("/") or 0),
                name=f"nmf-test-{tmp_path.name}", claim_expiry=5)
    conf.config(group="conductor", wait_timeout=0.1)
    return persistence.backend_from_conf(conf.conf)


def test_submitted_jobs_are_run_by_a_conductor(conf, cloud, distributed):
    ids = [cloud.add_server(h).id for h in ("host1", "host2")
           for _ in range(2)]
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE,
        hosts=["host1", "host2"])
    with jobboard.connected(conf.conf, distributed) as board:
        result = runner_mod.Runner(conf.conf, cloud,
                                   backend=distributed).submit(request, board)
        assert [j["name"] for j in result.jobs] == [
            "host-evacuate-live@host1", "host-evacuate-live@host2"]
        # Submitting disables the source hosts, and moves nothing.
        assert sorted(method for method, _ in cloud.writes) == [
            "update_service", "update_service"]
        assert {cloud.services[h].status for h in ("host1", "host2")} == {
            "disabled"}
        assert len(list(board.iterjobs())) == 2

        conductor = conductor_mod.Conductor("test-conductor", conf.conf,
                                            cloud, board, distributed)
        thread = threading.Thread(target=conductor.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while list(board.iterjobs(ensure_fresh=True)):
            assert time.monotonic() < deadline, "jobs were not run"
            time.sleep(0.1)
        conductor.stop()
        thread.join(10)
        conductor.close()

    assert {cloud.servers[i].host for i in ids} <= {"host3", "host4"}
    book = records.Records(distributed).get(result.run_id)
    assert book.meta["state"] == constants.RunState.FINISHED
    assert book.meta["summary"] == {"migrated": 4, "failed": 0,
                                    "skipped": 0}
    assert cloud.services["host1"].status == "disabled"


def test_claims_expire_unless_renewed(conf, cloud, distributed):
    with jobboard.connected(conf.conf, distributed) as board:
        job = board.post("a-job")
        board.claim(job, "conductor-a")
        assert board.find_owner(job) == "conductor-a"

        time.sleep(6)

        assert job.state == "UNCLAIMED"
        board.claim(job, "conductor-b")
        assert board.find_owner(job) == "conductor-b"
        board.consume(job, "conductor-b")
