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
"""Host maintenance: the task that brings a host back, and the hooks a
roll runs while a host is empty (the marker of a host in maintenance is in
:mod:`nova_migrate_flows.tasks.markers`)."""

import os
import subprocess
from typing import Any

from oslo_log import log as logging
from taskflow.types import failure as ft

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import base, service
from nova_migrate_flows.tasks.markers import parse_marker

LOG = logging.getLogger(__name__)

class EnableService(base.BaseTask):
    """Brings a host out of maintenance: enables its compute service, but
    only when an ``enter`` run's marker says why it is disabled.

    Reversion strategy: disable the service again with the marker, if this
    task enabled it.
    """

    def __init__(self, host: str, **kwargs: Any):
        super().__init__(
            name=constants.host_key("enable", host),
            provides=constants.host_key("service", host),
            inject={"host": host},
            **kwargs,
        )

    def execute(self, runtime: runtime_mod.Runtime,
                host: str) -> dict[str, Any]:
        runtime.cloud.forget_services()
        found = runtime.cloud.services().get(host)
        if found is None:
            raise exceptions.InvalidInput(
                f"host {host}: no nova-compute service there")
        result = {"service_id": found.id, "enabled_by_us": False,
                  "previous_reason": found.disabled_reason}
        if found.enabled:
            return dict(result, service="enabled")
        marker = parse_marker(found.disabled_reason)
        if marker is None:
            LOG.warning("The compute service of %s was not disabled by a "
                        "maintenance run (%s): left disabled", host,
                        found.disabled_reason or "no reason given")
            return dict(result, service="disabled", reason=(
                "not disabled by 'host-maintenance enter' ("
                f"{found.disabled_reason or 'no reason given'}): left "
                "disabled"))
        LOG.info("Enabling the compute service of %s (in maintenance since "
                 "%s, run %s)", host, marker.since, marker.run_id)
        service.update_service(runtime, host, found.id, disabled=False)
        runtime.events.emit("host.enabled", host=host)
        return dict(result, enabled_by_us=True, service="enabled",
                    enter_run=marker.run_id)

    def revert(self, runtime: runtime_mod.Runtime, host: str,
               result: Any, **kwargs: Any) -> None:
        if isinstance(result, ft.Failure) or not result or not result.get(
                "enabled_by_us"):
            return
        LOG.warning("Reverting: disabling the compute service of %s again",
                    host)
        service.update_service(runtime, host, result["service_id"],
                               disabled=True,
                               disabled_reason=result["previous_reason"])


class HookTask(base.BaseTask):
    """Base of the hooks of ``host-maintenance roll``: a task run once per
    host, after the host was emptied and before it is brought back.

    It gets ``runtime``, ``host``, ``request`` and ``run_id`` (the roll's)
    and fails by raising (:class:`~nova_migrate_flows.exceptions.
    HookFailed`): the roll then stops with the host in maintenance. A hook
    interrupted by a crash runs again when the roll resumes, so a hook must
    be idempotent.
    """

    kind = base.HOOK

    def __init__(self, host: str, plugin_name: str, **kwargs: Any):
        super().__init__(
            name=constants.host_key(f"hook-{plugin_name}", host),
            provides=constants.host_key("hook", host),
            inject={"host": host},
            **kwargs,
        )


class RunCommand(HookTask):
    """Runs the roll's ``--hook`` command for the host (environment:
    ``NMF_HOST``, ``NMF_RUN_ID``); a non-zero exit or ``[maintenance]
    hook_timeout`` stops the roll.

    Reversion strategy: N/A (what a command did cannot be undone here).
    """

    def execute(self, runtime: runtime_mod.Runtime, host: str,
                request: dict[str, Any], run_id: str) -> dict[str, Any]:
        command = request_mod.MoveRequest.from_dict(request).hook
        if not command:
            LOG.info("No --hook given: nothing to run on %s", host)
            return {"host": host, "command": None, "exit_code": None}
        timeout = runtime.conf.maintenance.hook_timeout
        env = dict(os.environ, NMF_HOST=host, NMF_RUN_ID=run_id)
        LOG.info("Running the hook on %s: %s", host, command)
        try:
            done = subprocess.run(  # noqa: S602 - the operator's command
                command, shell=True, env=env, timeout=timeout,
                capture_output=True, text=True, check=False,
            )
        except subprocess.TimeoutExpired:
            raise exceptions.HookFailed(
                f"the hook on {host} did not end within {timeout:.0f} s "
                "([maintenance] hook_timeout)") from None
        for line in (done.stdout + done.stderr).splitlines()[-20:]:
            LOG.info("hook %s: %s", host, line)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            raise exceptions.HookFailed(
                f"the hook on {host} exited with {done.returncode}"
                + (f": {last[-1]}" if last else ""))
        return {"host": host, "command": command, "exit_code": 0}


class PlanReturn(base.BaseTask):
    """Plans ``host-maintenance exit --move-back``: which of the servers an
    ``enter`` run moved away go back, each with the kind of move it left
    with, and why the others stay.

    It needs ``returns``: for each host, the servers its ``enter`` run
    moved away (id, name, destination, kind, flavor and status then). A
    server goes back only if it is still where that run put it, with the
    same flavor and state, and not busy.

    Reversion strategy: N/A (reads only).
    """

    default_provides = constants.PLAN

    def execute(self, runtime: runtime_mod.Runtime, request: dict[str, Any],
                returns: dict[str, list[dict[str, Any]]]
                ) -> dict[str, dict[str, Any]]:
        move = request_mod.MoveRequest.from_dict(request)
        plan = {
            row["server"]: self._entry(runtime, move, home, row)
            for home, rows in returns.items() for row in rows
        }
        runtime.events.emit("plan.ready", plan=plan)
        return plan

    def _entry(self, runtime: runtime_mod.Runtime,
               move: request_mod.MoveRequest, home: str,
               row: dict[str, Any]) -> dict[str, Any]:
        then = row["before"]
        try:
            now = runtime.compute.get_server(row["server"])
        except exceptions.NotFound:
            server = dict(then, host=row["destination"])
            why: str | None = "deleted since it was moved away"
        else:
            server = now.to_dict()
            why = return_refusal(then, row["destination"], now)
        return {
            "server": server,
            "action": constants.SKIP if why else row["action"],
            "block_migration": move.block_migration_value,
            "adopt": False,
            "flavor_id": None,
            "target_host": home,
            "server_group": None,
            "exclusive": [],
            "checks": {},
            "notes": [f"back to {home}"],
            "skip_reason": why,
            "refused": [],
        }


def return_refusal(then: dict[str, Any], destination: str,
                   now: models.Server) -> str | None:
    """Why a server the ``enter`` run moved to ``destination`` (as
    ``then``) does not go back, or None."""
    before = models.Server.from_dict(then)
    old, new = before.flavor_info, now.flavor_info
    if old != new:  # by name and sizes
        return f"resized since: flavor {new.name}, was {old.name}"
    if now.host != destination:
        return (f"moved since: it is on {now.host}, not on {destination} "
                "where the enter run put it")
    if now.status != before.status:
        return f"state changed since: {now.status}, was {before.status}"
    if now.task_state:
        return f"busy: task state {now.task_state}"
    return None


class ExitResult(base.BaseTask):
    """What ``host-maintenance exit`` did to one host: its service, and
    the servers it returned.

    Reversion strategy: N/A (reports only).
    """

    def __init__(self, host: str, server_ids: list[str], **kwargs: Any):
        super().__init__(
            name=constants.host_key("exit-result", host),
            provides=constants.host_key("result", host),
            rebind={"service": constants.host_key("service", host)},
            requires=[constants.server_key("outcome", s) for s in server_ids],
            inject={"host": host},
            **kwargs,
        )

    def execute(self, host: str, service: dict[str, Any],
                **outcomes: dict[str, Any]) -> dict[str, Any]:
        returned = [o for o in outcomes.values()
                    if o["status"] == constants.ServerStatus.MIGRATED]
        return {
            "host": host,
            "service": service["service"],
            "reason": service.get("reason"),
            "enabled_by_us": service["enabled_by_us"],
            "returned": len(returned),
            # The host is back in service (whether this run enabled it or
            # it was already).
            "done": service["service"] == "enabled",
        }
