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
"""One atom runs a moved server's verifications: each plugin as it would
run in an atom of its own, its verdict recorded under its name."""

from typing import Any

import pytest
from taskflow import engines
from taskflow.patterns import linear_flow

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.flows import building
from nova_migrate_flows.tasks import base, verifications

SERVER = "s-1"
BEFORE = {"id": SERVER, "name": "web-1", "status": "ACTIVE", "flavor": {},
          "host": "host1"}
MOVED = base.Moved(server_id=SERVER, action="live-migrate", source="host1",
                   before=BEFORE, after=dict(BEFORE, host="host2")).to_dict()


class Recorded(base.VerifyTask):
    """Passes, and notes that it ran (and what it was given)."""

    ran: list[tuple[str, Any]] = []

    def verify(self, runtime, moved, request):
        Recorded.ran.append((self.plugin_name, moved.after_server.host))
        return base.passed(f"{self.plugin_name} saw {moved.after_server.host}")


class Fails(base.VerifyTask):
    """Fails."""

    def verify(self, runtime, moved, request):
        Recorded.ran.append((self.plugin_name, None))
        return base.fail("the application did not answer")


class NeedsMore(base.VerifyTask):
    """Needs a value of the store no built-in verification takes, and one
    it takes only when there."""

    def execute(self, runtime, moved, request, window, run_id=None):
        Recorded.ran.append((self.plugin_name, (window, run_id)))
        return base.passed(f"in window {window}").to_dict()


@pytest.fixture(autouse=True)
def _forget():
    Recorded.ran = []


@pytest.fixture
def request_dict(conf):
    return request_mod.build_request(
        conf.conf, request_mod.Operation.LIVE_MIGRATE,
        servers=[SERVER]).to_dict()


def checks(*plugins):
    return [plugin(plugin_name=name, server_id=SERVER)
            for name, plugin in plugins]


def run(atom, request, **store):
    flow = linear_flow.Flow("verify-one").add(atom)
    engine = engines.load(flow, store={
        constants.server_key("moved", SERVER): MOVED,
        constants.REQUEST: request, **store,
    })
    engine.storage.inject({constants.RUNTIME: object()}, transient=True)
    engine.run()
    return engine.storage.fetch(constants.server_key("verified", SERVER))


def test_every_verification_runs_in_order_and_each_verdict_is_recorded(
        request_dict):
    atom = verifications.VerifyServer(SERVER, checks(
        ("second-look", Recorded), ("first-look", Recorded)))

    verdicts = run(atom, request_dict)

    assert atom.name == f"verify[{SERVER}]"
    assert Recorded.ran == [("second-look", "host2"), ("first-look", "host2")]
    assert list(verdicts) == ["second-look", "first-look"]
    assert verdicts["first-look"] == {
        "status": "pass", "message": "first-look saw host2", "data": {}}


def test_a_failed_verification_stops_the_rest_and_names_itself(request_dict):
    atom = verifications.VerifyServer(SERVER, checks(
        ("looks", Recorded), ("app-alive", Fails), ("never", Recorded)))
    flow = linear_flow.Flow("verify-one").add(atom)
    engine = engines.load(flow, store={
        constants.server_key("moved", SERVER): MOVED,
        constants.REQUEST: request_dict})
    engine.storage.inject({constants.RUNTIME: object()}, transient=True)

    with pytest.raises(exceptions.VerificationFailed,
                       match="^app-alive: the application did not answer$"):
        engine.run()
    assert [name for name, _ in Recorded.ran] == ["looks", "app-alive"]


def test_a_plugin_gets_what_it_requires_and_what_it_may_take(request_dict):
    atom = verifications.VerifyServer(SERVER, checks(
        ("looks", Recorded), ("in-window", NeedsMore)))

    assert "window" in atom.requires
    assert "run_id" in atom.optional
    verdicts = run(atom, request_dict, window="sunday", run_id="r-1")
    assert Recorded.ran[-1] == ("in-window", ("sunday", "r-1"))
    assert verdicts["in-window"]["message"] == "in window sunday"

    Recorded.ran = []
    run(verifications.VerifyServer(SERVER, checks(("in-window", NeedsMore))),
        request_dict, window="monday")
    assert Recorded.ran == [("in-window", ("monday", None))]


def test_a_server_move_has_one_verification_atom_whatever_the_count():
    plugins = building.load_verify(["migration-completed", "host-changed",
                                    "server-state-restored"])
    flow = building.server_move(SERVER, "live-migrate", plugins, [None])

    names = [atom.name for atom, _ in flow.iter_nodes()]
    assert names.count(f"verify[{SERVER}]") == 1
    assert not [n for n in names if n.startswith("verify-")]
    verify = next(a for a, _ in flow.iter_nodes()
                  if a.name == f"verify[{SERVER}]")
    assert [c.plugin_name for c in verify.checks] == [
        "migration-completed", "host-changed", "server-state-restored"]

    bare = building.server_move(SERVER, "live-migrate", [], [None])
    assert f"verify[{SERVER}]" not in [a.name for a, _ in bare.iter_nodes()]
