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
"""Flows that empty hosts: one preflight flow for the whole operation,
then one flow per source host.

One flow per host keeps TaskFlow's compile time (quadratic in the atoms of
a flow) small and lets hosts drain in parallel, each in its own engine.
"""

from collections.abc import Sequence

from taskflow.patterns import graph_flow, linear_flow

from nova_migrate_flows import constants
from nova_migrate_flows.flows import building
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import service


def preflight_flow(
    operation: str, preflight_tasks: Sequence[str]
) -> graph_flow.Flow:
    """Check every server of every host, then plan; changes nothing.

    Store: ``runtime`` (transient), ``request`` and ``servers``; provides
    ``plan``.
    """
    flow = graph_flow.Flow(constants.preflight_flow(operation))
    flow.add(*building.preflight_atoms(
        building.load_preflight(preflight_tasks)
    ))
    return flow


def disable_flow(operation: str, hosts: Sequence[str]) -> graph_flow.Flow:
    """Disable the compute service of every source host, before any of
    them drains: otherwise Nova's scheduler may send the servers of one
    source host to another that is still enabled.

    Each host's own flow then finds its service disabled by this run (the
    reason names it) and takes over undoing it. Store: ``runtime``
    (transient), ``request`` and ``run_id``.
    """
    flow = graph_flow.Flow(constants.disable_flow(operation))
    flow.add(*[service.DisableService(host) for host in hosts])
    return flow


def host_flow(
    operation: str,
    host: str,
    moves: Sequence[Sequence[str]],
    verify_tasks: Sequence[str],
    candidates: Sequence[str | None] = (None,),
    lane_count: dict[str, int] | None = None,
    serial: Sequence[Sequence[str]] = (),
) -> linear_flow.Flow:
    """Empty one host: disable its service, move its servers through
    parallel lanes, check it is empty, and leave the service as the outcome
    says.

    ``moves`` lists ``[server_id, action]`` pairs from the plan (skipped
    servers are not in it); each list of ``serial`` holds servers that move
    one after the other in one lane (see :func:`~nova_migrate_flows.flows.
    building.lanes`). Store: ``runtime`` (transient), ``request``, ``plan``
    and optionally ``run_id``.
    """
    op = Operation(operation)
    flow = linear_flow.Flow(constants.host_flow(operation, host))
    if op is Operation.HOST_EVACUATE:
        flow.add(service.ForceDownService(host))
    flow.add(service.DisableService(host))
    pairs = [(server_id, action) for server_id, action in moves]
    if pairs:
        flow.add(building.lanes(
            host, pairs, lane_count or {"live": 1, "cold": 1},
            building.load_verify(verify_tasks), candidates, serial,
        ))
    flow.add(
        service.VerifyHostEmpty(host, [server_id for server_id, _ in pairs]),
        service.FinalizeService(host),
    )
    return flow
