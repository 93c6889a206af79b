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
"""Which kind of move an operation gives each server, or why none.

This is the core of every plan: :class:`~nova_migrate_flows.tasks.plan.
BuildPlan` asks it for every server, whatever preflight checks are
configured; the ``server-state`` check reports the same verdict with its
details (busy, locked).
"""

from nova_migrate_flows import constants
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import microversions, models
from nova_migrate_flows.moves import registry
from nova_migrate_flows.request import Operation

#: The kind each operation moves its servers with (live operations may
#: move stopped servers cold, as configured).
KIND_OF = {
    Operation.LIVE_MIGRATE: constants.LIVE,
    Operation.HOST_EVACUATE_LIVE: constants.LIVE,
    Operation.HOST_SERVERS_MIGRATE: constants.COLD,
    Operation.RESIZE: constants.RESIZE,
    Operation.HOST_EVACUATE: constants.EVACUATE,
}


def kind_name(request: request_mod.MoveRequest) -> str:
    """The kind of move ``request`` asks for."""
    if request.op is Operation.MOVE:
        if not request.kind:
            raise ValueError("a move request names its kind")
        return request.kind
    return KIND_OF[request.op]


def microversion_error(request: request_mod.MoveRequest,
                       cloud_max: str) -> str | None:
    """Why a cloud whose compute API goes up to ``cloud_max`` cannot do
    ``request``, or None."""
    too_old = microversions.oldest_supported_error(cloud_max)
    if too_old is not None:
        return f"{request.operation}: {too_old}"
    kind = registry.get(kind_name(request))
    needed = kind.microversion(request.target_host)
    if needed is None or microversions.supports(cloud_max, needed):
        return None
    onto = f" onto {request.target_host}" if request.target_host else ""
    return (f"{request.operation}: a {kind.name}{onto} needs compute API "
            f"microversion {needed}; the cloud's maximum is {cloud_max}")


def moves_live(request: request_mod.MoveRequest) -> bool:
    """Whether ``request`` moves its servers live (stopped servers of a
    live host drain may still move cold)."""
    return kind_name(request) == constants.LIVE


def planned_action(
    server: models.Server, request: request_mod.MoveRequest
) -> tuple[str | None, str]:
    """The kind of move ``request`` gives ``server``, or None and why
    not."""
    kind = registry.get(kind_name(request))
    why = kind.refusal(server)
    if why is None:
        return kind.name, ""
    if request.op is Operation.HOST_EVACUATE_LIVE and \
            server.status == "SHUTOFF":
        if request.stopped_servers == "cold-migrate":
            return constants.COLD, "SHUTOFF: cold-migrated"
        return None, "SHUTOFF: cannot move live (stopped_servers = skip)"
    return None, why
