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
"""Building blocks of the flows, shared by the flow factories.

The factories themselves (module-level functions with plain, serialisable
arguments, so a conductor can rebuild a flow by name) live in the modules
beside this one; here are the pieces they are made of: the preflight
sub-flow, one server's move sub-flow, and the lanes a host drains through.
"""

import functools
from collections.abc import Sequence

from taskflow.patterns import linear_flow, unordered_flow

from nova_migrate_flows import constants
from nova_migrate_flows.moves import registry
from nova_migrate_flows.tasks import (
    base,
    loader,
    outcome,
    plan,
    retry,
)
from nova_migrate_flows.tasks import verifications as verifications_mod

PREFLIGHT_OPTION = "[migration] preflight_tasks"
VERIFY_OPTION = "[migration] verify_tasks"


Plugins = list[tuple[str, type[base.BaseTask]]]


def load_preflight(check_names: Sequence[str]) -> Plugins:
    return loader.load(check_names, base.PREFLIGHT, PREFLIGHT_OPTION)


def load_verify(verify_names: Sequence[str]) -> Plugins:
    return loader.load(verify_names, base.VERIFY, VERIFY_OPTION)


def preflight_atoms(checks: Plugins) -> list[base.BaseTask]:
    """The checks and the task that builds the plan from their verdicts.

    They need ``servers``, ``request`` and ``runtime`` in the store; the
    last one provides ``plan``.
    """
    return [
        *[plugin(plugin_name=name) for name, plugin in checks],
        plan.BuildPlan([name for name, _ in checks],
                       name=constants.BUILD_PLAN),
    ]


def server_move(
    server_id: str,
    action: str,
    verifications: Plugins,
    candidates: Sequence[str | None],
) -> linear_flow.Flow:
    """One server's move of kind ``action``: start, wait, settle, verify,
    finish, report (see :class:`~nova_migrate_flows.moves.base.MoveKind`).
    The verifications run in one atom (see :mod:`~nova_migrate_flows.tasks.
    verifications`).

    A retry controller tries the candidate hosts in turn and, when they are
    used up, gives up on this server only (see
    :mod:`nova_migrate_flows.tasks.retry`).
    """
    kind = registry.get(action)
    start, wait, settle, finish = kind_tasks(kind.name)
    flow = linear_flow.Flow(
        constants.server_flow(server_id),
        retry=retry.TargetHostRetry(server_id, list(candidates)),
    )
    flow.add(start(server_id, kind=kind.name),
             wait(server_id, kind=kind.name))
    if settle is not None:
        flow.add(settle(server_id, kind=kind.name))
    if verifications:
        flow.add(verifications_mod.VerifyServer(server_id, [
            plugin(plugin_name=name, server_id=server_id,
                   moved_key=kind.verified_key(server_id))
            for name, plugin in verifications
        ]))
    if finish is not None:
        flow.add(finish(server_id, kind=kind.name))
    flow.add(outcome.ServerOutcome(server_id, kind.outcome_key(server_id)))
    return flow


MoveTasks = tuple[type[base.BaseTask], type[base.BaseTask],
                  type[base.BaseTask] | None, type[base.BaseTask] | None]


@functools.cache
def kind_tasks(name: str) -> MoveTasks:
    """The task plugins of a kind of move: start, wait, settle, finish."""
    kind = registry.get(name)
    wanted = [kind.start_task, kind.wait_task, kind.settle_task,
              kind.finish_task]
    loaded = dict(loader.load([n for n in wanted if n], base.CORE,
                              f"move kind {kind.name!r}"))

    def optional(task: str | None) -> type[base.BaseTask] | None:
        return loaded[task] if task else None

    return (loaded[kind.start_task], loaded[kind.wait_task],
            optional(kind.settle_task), optional(kind.finish_task))


def pool_of(action: str) -> str:
    """The throttle pool of a kind of move."""
    return registry.get(action).throttle_pool


def lanes(
    host: str,
    moves: Sequence[tuple[str, str]],
    lane_count: dict[str, int],
    verifications: Plugins,
    candidates: Sequence[str | None],
    serial: Sequence[Sequence[str]] = (),
) -> unordered_flow.Flow:
    """The servers of one host, dealt round-robin into parallel lanes.

    Each lane moves its servers one after the other. There is one lane more
    than the throttle lets moves of a kind run at once (Nova's per-host
    limit plus the pipeline depth for live migrations, the cold limit for
    the others): its next server waits for a slot with its request ready,
    and goes the moment the poller sees a move end, while the other lanes
    verify what they moved. So one task thread per host at most waits, and
    the lanes running out unevenly at the end never leaves Nova idle.

    The servers of each list of ``serial`` (the members of one hard
    anti-affinity group) go into one lane, one after the other, each moved
    and verified before the next starts: they never wait on each other in
    two lanes.
    """
    together = {server_id: index for index, ids in enumerate(serial)
                for server_id in ids}
    by_kind: dict[str, list[list[tuple[str, str]]]] = {}
    units: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for server_id, action in moves:
        kind = pool_of(action)
        unit = together.get(server_id)
        if unit is not None and (kind, unit) in units:
            units[(kind, unit)].append((server_id, action))
            continue
        pairs = [(server_id, action)]
        if unit is not None:
            units[(kind, unit)] = pairs
        by_kind.setdefault(kind, []).append(pairs)
    group = unordered_flow.Flow(constants.host_key("servers", host))
    for kind, dealt in sorted(by_kind.items()):
        count = max(1, min(lane_count[kind] + 1, len(dealt)))
        for index in range(count):
            lane = linear_flow.Flow(
                constants.host_key(f"{kind}-lane-{index + 1}", host)
            )
            lane.add(*[
                server_move(server_id, action, verifications, candidates)
                for pairs in dealt[index::count]
                for server_id, action in pairs
            ])
            group.add(lane)
    return group
