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
"""The shape of the flows: names, requirements, and what runs in order."""

import pytest
from taskflow import engines
from taskflow.listeners import capturing

from nova_migrate_flows import constants, opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.flows import building, single
from nova_migrate_flows.flows import host as host_flows

VERIFY = opts.DEFAULT_VERIFY_TASKS
PREFLIGHT = opts.DEFAULT_PREFLIGHT_TASKS


def atoms(flow):
    for item, _ in flow.iter_nodes():
        if hasattr(item, "iter_nodes"):
            yield from atoms(item)
        else:
            yield item
    if getattr(flow, "retry", None) is not None:
        yield flow.retry


def name_of(details):
    return details.get("task_name") or details.get("retry_name")


def moves(count, action=constants.LIVE):
    return [[f"server-{i}", action] for i in range(count)]


def test_atom_names_and_provides_are_unique_in_a_host_flow():
    flow = host_flows.host_flow(
        "host-evacuate-live", "host1",
        moves(5) + [["cold-1", constants.COLD]], VERIFY,
        lane_count={"live": 2, "cold": 1},
    )
    every = list(atoms(flow))
    names_seen = [a.name for a in every]
    provided = [p for a in every for p in a.provides]

    assert len(names_seen) == len(set(names_seen))
    assert len(provided) == len(set(provided))
    assert constants.server_key("outcome", "cold-1") in provided


def test_a_host_flow_needs_only_the_run_values():
    flow = host_flows.host_flow("host-evacuate-live", "host1", moves(3),
                                VERIFY)

    assert set(flow.requires) == {constants.RUNTIME, constants.REQUEST,
                                  constants.PLAN}


def test_the_live_migration_flow_needs_only_the_run_values():
    flow = single.live_migration_flow("s1", PREFLIGHT, VERIFY)

    assert set(flow.requires) == {constants.RUNTIME, constants.REQUEST,
                                  constants.SERVERS}
    assert constants.PLAN in flow.provides
    assert constants.server_key("outcome", "s1") in flow.provides


@pytest.mark.parametrize(("source", "confirm_within", "lanes"), [
    ("poll", 30.0, 3),
    ("notifications", 30.0, 4),
    ("notifications", 0.0, 3),
])
def test_a_host_keeps_one_more_live_migration_while_ends_wait_to_be_read(
        conf, source, confirm_within, lanes):
    """Nova's limit and the pipeline's, and one more while a move that
    ended may wait for its record to be read (its lane with it)."""
    conf.config(group="watch", source=source, confirm_within=confirm_within)
    move = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=["h"],
        max_concurrent=1, pipeline_depth=2)

    assert runner_mod.live_lanes(conf.conf, move) == lanes


def test_lanes_spread_servers_round_robin():
    group = building.lanes("host1", [(f"s{i}", constants.LIVE)
                                     for i in range(5)],
                           {"live": 2, "cold": 1},
                           building.load_verify(VERIFY), [None])

    lanes = [lane for lane, _ in group.iter_nodes()]
    servers = [[sub.name for sub, _ in lane.iter_nodes()] for lane in lanes]
    # One lane more than the two moves the throttle lets run at once.
    assert servers == [
        ["server[s0]", "server[s3]"],
        ["server[s1]", "server[s4]"],
        ["server[s2]"],
    ]


def test_servers_that_move_one_after_the_other_share_a_lane():
    group = building.lanes("host1", [(f"s{i}", constants.LIVE)
                                     for i in range(5)],
                           {"live": 2, "cold": 1},
                           building.load_verify(VERIFY), [None],
                           serial=[["s1", "s3", "s4"]])

    lanes = [lane for lane, _ in group.iter_nodes()]
    servers = [[sub.name for sub, _ in lane.iter_nodes()] for lane in lanes]
    assert servers == [
        ["server[s0]"],
        ["server[s1]", "server[s3]", "server[s4]"],
        ["server[s2]"],
    ]


def test_the_engine_validates_a_host_flow(conf):
    flow = host_flows.host_flow("host-evacuate-live", "host1", moves(2),
                                VERIFY)
    store = {constants.REQUEST: {}, constants.PLAN: {}, "run_id": "r",
             constants.RUNTIME: None}
    engine = engines.load(flow, store=store)

    engine.compile()
    engine.prepare()
    engine.validate()  # raises MissingDependencies, among others

    assert set(flow.requires) <= set(store)
    assert constants.host_key("result", "host1") in flow.provides


def test_a_live_migration_runs_its_steps_in_order(conf):
    cloud = fake.FakeCompute(3, steps=1)
    server = cloud.add_server("host1")
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.LIVE_MIGRATE, servers=[server.id])
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)
    runtime.start()
    flow = single.live_migration_flow(server.id, ["server-state"],
                                      ["host-changed"])
    engine = engines.load(flow, store={
        constants.REQUEST: request.to_dict(),
        constants.SERVERS: {server.id: server.to_dict()},
    })
    engine.storage.inject({constants.RUNTIME: runtime}, transient=True)
    with capturing.CaptureListener(engine, capture_flow=False) as capture:
        engine.run()
    runtime.close()

    done = [name_of(details) for _, state, details in capture.values
            if state == "SUCCESS"]
    key = server.id
    assert done == [
        "preflight-server-state",
        "build-plan",
        f"targets[{key}]",
        f"live-migrate[{key}]",
        f"wait-live-migrate[{key}]",
        f"verify[{key}]",
        f"outcome[{key}]",
    ]
    verdicts = engine.storage.fetch(f"verified[{key}]")
    assert list(verdicts) == ["host-changed"]
    assert verdicts["host-changed"]["status"] == "pass"


def test_a_skipped_server_runs_no_move(conf):
    cloud = fake.FakeCompute(3, steps=1)
    server = cloud.add_server("host1", status="SUSPENDED")
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.LIVE_MIGRATE, servers=[server.id])
    runtime = runtime_mod.Runtime(conf.conf, cloud, request)
    flow = single.live_migration_flow(server.id, ["storage"],
                                      ["host-changed"])
    engine = engines.load(flow, store={
        constants.REQUEST: request.to_dict(),
        constants.SERVERS: {server.id: server.to_dict()},
    })
    engine.storage.inject({constants.RUNTIME: runtime}, transient=True)
    with capturing.CaptureListener(engine, capture_flow=False) as capture:
        engine.run()

    ignored = {name_of(details) for _, state, details in capture.values
               if state == "IGNORE"}
    assert f"live-migrate[{server.id}]" in ignored
    assert cloud.writes == []
