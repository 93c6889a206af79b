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
"""Turning the verdicts of the preflight checks into a plan."""

from typing import Any

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.moves import planning
from nova_migrate_flows.tasks import base


class BuildPlan(base.BaseTask):
    """Merges every preflight verdict into the plan: what happens to each
    server, and why.

    Raises :class:`~nova_migrate_flows.exceptions.PreflightFailed` when
    any check failed (unless this is a dry run, whose plan shows the
    failures instead).

    Reversion strategy: N/A (nothing was changed yet).
    """

    default_provides = constants.PLAN

    def __init__(self, checks: list[str], **kwargs: Any):
        super().__init__(
            requires=[constants.preflight_key(c) for c in checks], **kwargs
        )
        self._checks = list(checks)

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        servers: dict[str, dict[str, Any]],
        request: dict[str, Any],
        **verdicts: dict[str, dict[str, Any]],
    ) -> dict[str, dict[str, Any]]:
        move = request_mod.MoveRequest.from_dict(request)
        plan = {
            server_id: self._entry(server_id, server, move, verdicts)
            for server_id, server in servers.items()
        }
        refused = [
            f"server {entry['server']['name']} ({server_id}): {reason}"
            for server_id, entry in plan.items()
            for reason in entry["refused"]
        ]
        runtime.events.emit("plan.ready", plan=plan)
        if refused and not move.dry_run:
            more = f" (and {len(refused) - 1} more; see --dry-run)" \
                if len(refused) > 1 else ""
            raise exceptions.PreflightFailed(
                f"preflight refused the {move.operation}: {refused[0]}"
                f"{more}; nothing was changed",
                plan,
            )
        return plan

    def _entry(
        self,
        server_id: str,
        server: dict[str, Any],
        request: request_mod.MoveRequest,
        verdicts: dict[str, dict[str, dict[str, Any]]],
    ) -> dict[str, Any]:
        checks: dict[str, dict[str, Any]] = {}
        data: dict[str, Any] = {}
        notes: list[str] = []
        skipped: list[str] = []
        refused: list[str] = []
        for check in self._checks:
            verdict = verdicts[constants.preflight_key(check)].get(server_id)
            if verdict is None:
                continue
            checks[check] = {
                "status": verdict["status"],
                "message": verdict["message"],
            }
            data.update(verdict.get("data") or {})
            message = f"{check}: {verdict['message']}"
            if verdict["status"] == base.WARN:
                notes.append(message)
            elif verdict["status"] == base.SKIP:
                skipped.append(message)
            elif verdict["status"] == base.FAIL:
                refused.append(message)
        # A check that read the server again (a busy one, waited for)
        # gives it as it is now: the plan moves that.
        server = data.get("server") or server
        action, why_not = planning.planned_action(
            models.Server.from_dict(server), request
        )
        action = data.get("action") or action
        if not action and not skipped:
            # No check said why (server-state says it with its details).
            skipped.append(why_not)
        if skipped or refused:
            action = constants.SKIP
        return {
            "server": server,
            "action": action,
            "block_migration": data.get(
                "block_migration", request.block_migration_value
            ),
            "adopt": bool(data.get("adopt")),
            "flavor_id": data.get("flavor_id"),
            "target_host": request.target_host,
            # The server's hard server group (policy and members), which
            # the ``server-group-policy`` verification checks.
            "server_group": data.get("server_group"),
            # Groups no other member of which may move at the same time.
            "exclusive": list(data.get("exclusive") or ()),
            "checks": checks,
            "notes": notes,
            "skip_reason": "; ".join(skipped) or None,
            "refused": refused,
        }
