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
"""Flows that move one server: any kind of move, and the live migration
and resize that the ``live-migrate`` and ``resize`` commands run.

Each is one graph flow: the preflight checks, the plan, then (unless the
plan skips the server) the server's move with its verifications, rolled
back by TaskFlow's revert when a step fails.
"""

import functools
from collections.abc import Sequence
from typing import Any

from taskflow.patterns import graph_flow

from nova_migrate_flows import constants
from nova_migrate_flows.flows import building
from nova_migrate_flows.request import Operation


def _planned_to_move(server_id: str, history: dict[str, Any]) -> bool:
    """Decider: move the server only when the plan does not skip it."""
    plan = history[constants.BUILD_PLAN]
    return bool(plan[server_id]["action"] != constants.SKIP)


def move_flow(
    server_id: str,
    kind: str,
    preflight_tasks: Sequence[str],
    verify_tasks: Sequence[str],
    candidates: Sequence[str | None] = (None,),
    operation: str = Operation.MOVE.value,
) -> graph_flow.Flow:
    """Move one server with the kind of move called ``kind``: preflight,
    start, wait, verify, finish (or undo what the move did when a step
    fails).

    Store: ``runtime`` (transient), ``request``, ``servers`` (the server,
    as read before the run) and optionally ``run_id``.
    """
    atoms = building.preflight_atoms(
        building.load_preflight(preflight_tasks)
    )
    move = building.server_move(
        server_id, kind, building.load_verify(verify_tasks), candidates
    )
    flow = graph_flow.Flow(constants.single_flow(operation, server_id))
    flow.add(*atoms, move)
    flow.link(
        atoms[-1], move,
        decider=functools.partial(_planned_to_move, server_id),
    )
    return flow


def live_migration_flow(
    server_id: str,
    preflight_tasks: Sequence[str],
    verify_tasks: Sequence[str],
    candidates: Sequence[str | None] = (None,),
) -> graph_flow.Flow:
    """Live-migrate one server: preflight, migrate, monitor, verify.

    Store: ``runtime`` (transient), ``request``, ``servers`` (the server,
    as read before the run) and optionally ``run_id``.
    """
    return move_flow(server_id, constants.LIVE, preflight_tasks,
                     verify_tasks, candidates, Operation.LIVE_MIGRATE.value)


def resize_flow(
    server_id: str,
    preflight_tasks: Sequence[str],
    verify_tasks: Sequence[str],
) -> graph_flow.Flow:
    """Resize one server: preflight, resize, wait for VERIFY_RESIZE,
    verify, confirm (or revert the resize when a step fails)."""
    return move_flow(server_id, constants.RESIZE, preflight_tasks,
                     verify_tasks, (None,), Operation.RESIZE.value)
