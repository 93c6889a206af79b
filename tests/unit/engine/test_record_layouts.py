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
"""A run recorded by an earlier layout of the records is refused, with the
layout named, never resumed wrong. The fixtures were written by the code of
commits a9bb349 (layout 1) and 5a553f5 (layout 2): see
fixtures/make_layout_fixture.py."""

import json
import pathlib
import shutil

import pytest

import nova_migrate_flows
from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.engine import persistence, records
from nova_migrate_flows.engine import runner as runner_mod

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture(params=[1, 2])
def old_run(request, conf, tmp_path):
    """A recorded run of an earlier layout, the cloud as that run left it,
    and how the refusal names what recorded it."""
    layout = request.param
    shutil.copy(FIXTURES / f"layout{layout}-interrupted.db",
                tmp_path / persistence.DB_NAME)
    conf.config(state_dir=str(tmp_path))
    described = json.loads((FIXTURES / f"layout{layout}-interrupted.json")
                           .read_text())
    cloud = fake.FakeCompute(4)
    for data in described["servers"]:
        server = models.Server.from_dict(data)
        cloud.add_server(server.host, name=server.name, server_id=server.id)
    recorded_by = {
        1: "a nova-migrate-flows older than record layouts (record layout 1)",
        2: "nova-migrate-flows 0.0.1.dev186 (record layout 2)",
    }[layout]
    return described["run_id"], cloud, layout, recorded_by


def test_a_run_of_an_earlier_layout_is_refused_and_left_as_it_is(
        conf, old_run):
    run_id, cloud, layout, recorded_by = old_run
    backend = persistence.backend_from_conf(conf.conf)
    store = records.Records(backend)
    assert store.get(run_id).meta.get("layout", 1) == layout

    with pytest.raises(exceptions.InvalidInput) as caught:
        runner_mod.Runner(conf.conf, cloud, backend=backend).resume(run_id)

    assert str(caught.value).startswith(
        f"run {run_id} was recorded by {recorded_by}; this version (")
    assert str(caught.value).endswith(
        f", layout {records.LAYOUT}) cannot resume it: finish it with the "
        "version that recorded it, or start the operation again")
    assert cloud.writes == []
    assert store.get(run_id).meta["state"] == \
        constants.RunState.INTERRUPTED


def test_a_new_run_records_its_layout_and_version(conf, tmp_path):
    conf.config(state_dir=str(tmp_path))
    store = records.Records(persistence.backend_from_conf(conf.conf))

    book = store.create("0b4e4f5a-77c3-4f8e-9d55-2c1b3f6a7e10",
                        {"operation": "live-migrate", "servers": ["s1"]})

    assert book.meta["layout"] == records.LAYOUT
    assert book.meta["version"] == nova_migrate_flows.__version__
