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
"""Flows of host maintenance: planning the return of servers, bringing
one host back, and a roll's hook on one host.

Entering maintenance is a host drain (:func:`nova_migrate_flows.flows.host.
host_flow`) whose service task leaves the maintenance marker.
"""

from collections.abc import Sequence

from taskflow.patterns import graph_flow, linear_flow

from nova_migrate_flows import constants
from nova_migrate_flows.flows import building
from nova_migrate_flows.tasks import base, loader, maintenance

HOOK_OPTION = "[maintenance] hook_task"


def return_plan_flow(operation: str) -> graph_flow.Flow:
    """Plan which servers go back to their hosts; changes nothing.

    Store: ``runtime`` (transient), ``request`` and ``returns``; provides
    ``plan``.
    """
    flow = graph_flow.Flow(constants.preflight_flow(operation))
    flow.add(maintenance.PlanReturn(name=constants.BUILD_PLAN))
    return flow


def exit_flow(
    operation: str,
    host: str,
    moves: Sequence[Sequence[str]],
    verify_tasks: Sequence[str],
    lane_count: dict[str, int] | None = None,
) -> linear_flow.Flow:
    """Bring one host back: enable its compute service (when a maintenance
    run disabled it), then move back the servers of ``moves`` (``[server_id,
    action]`` pairs), each verified on ``host``.

    Store: ``runtime`` (transient), ``request`` and ``plan``.
    """
    flow = linear_flow.Flow(constants.host_flow(operation, host))
    flow.add(maintenance.EnableService(host))
    pairs = [(server_id, action) for server_id, action in moves]
    if pairs:
        flow.add(building.lanes(
            host, pairs, lane_count or {"live": 1, "cold": 1},
            building.load_verify(verify_tasks), [host],
        ))
    flow.add(maintenance.ExitResult(host, [s for s, _ in pairs]))
    return flow


def hook_flow(host: str, hook_task: str) -> linear_flow.Flow:
    """A roll's hook on one host: the task plugin ``hook_task`` (kind
    ``hook``). Store: ``runtime`` (transient), ``request`` and ``run_id``.
    """
    (name, plugin), = loader.load([hook_task], base.HOOK, HOOK_OPTION)
    flow = linear_flow.Flow(hook_flow_name(host))
    flow.add(plugin(host, plugin_name=name))
    return flow


def hook_flow_name(host: str) -> str:
    return constants.host_key("hook", host)
