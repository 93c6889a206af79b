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
"""Tasks on a whole host: its compute service, and whether it is empty.

The disabled reason marks this tool, the time and the run, so an operator
(and the tool itself, on resume) can tell why a host is disabled. The
service is enabled again only by the run that disabled it.
"""

from typing import Any

from oslo_log import log as logging
from taskflow.types import failure as ft

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.execution import writes
from nova_migrate_flows.tasks import base, markers

LOG = logging.getLogger(__name__)



def start_reason(move: request_mod.MoveRequest, run_id: str | None) -> str:
    """The disabled reason a run sets when it disables a source host:
    entering maintenance sets the maintenance marker at once."""
    if move.op is request_mod.Operation.MAINTENANCE_ENTER and run_id:
        return markers.new_marker(run_id, move.reason).text()
    return markers.reason(f"{move.operation} started", run_id)


def _service(runtime: runtime_mod.Runtime, host: str, fresh: bool) -> Any:
    if fresh:
        runtime.cloud.forget_services()
    service = runtime.cloud.services().get(host)
    if service is None:
        raise exceptions.InvalidInput(
            f"host {host}: no nova-compute service there"
        )
    return service


def update_service(
    runtime: runtime_mod.Runtime,
    host: str,
    service_id: str,
    *,
    disabled: bool | None = None,
    disabled_reason: str | None = None,
    forced_down: bool | None = None,
) -> None:
    """Change the compute service of ``host``; after a lost answer, send
    the change again only if Nova does not show it."""

    def shown() -> models.Service | None:
        service = next((s for s in runtime.compute.list_services()
                        if s.id == service_id), None)
        if service is None or (
            disabled is not None and service.enabled == disabled
        ) or (
            disabled_reason is not None
            and service.disabled_reason != disabled_reason
        ) or (
            forced_down is not None and service.forced_down != forced_down
        ):
            return None
        return service

    writes.send_once(
        runtime, f"the update of the compute service of {host}",
        lambda: runtime.compute.update_service(
            service_id, disabled=disabled, disabled_reason=disabled_reason,
            forced_down=forced_down,
        ),
        shown,
    )
    changes: dict[str, Any] = {}
    if disabled is not None:
        changes["status"] = "disabled" if disabled else "enabled"
    if disabled_reason is not None or disabled is False:
        changes["disabled_reason"] = disabled_reason
    if forced_down is not None:
        changes["forced_down"] = forced_down
    runtime.cloud.service_changed(host, **changes)


class _HostTask(base.BaseTask):
    def __init__(self, what: str, host: str, **kwargs: Any):
        super().__init__(
            name=constants.host_key(what, host),
            inject={"host": host},
            **kwargs,
        )


class ForceDownService(_HostTask):
    """Forces the compute service of a failed host down (--force-down).

    Reversion strategy: unset forced_down, if this run set it.
    """

    def __init__(self, host: str, **kwargs: Any):
        super().__init__(
            "force-down", host,
            provides=constants.host_key("forced-down", host),
            **kwargs,
        )

    def execute(self, runtime: runtime_mod.Runtime, host: str,
                request: dict[str, Any]) -> dict[str, Any]:
        service = _service(runtime, host, runtime.resuming)
        move = request_mod.MoveRequest.from_dict(request)
        if not move.force_down or service.forced_down or not service.up:
            return {"forced_down_by_us": False, "service_id": service.id}
        LOG.warning("Forcing the compute service of %s down", host)
        update_service(runtime, host, service.id, forced_down=True)
        runtime.cloud.forget_services()
        return {"forced_down_by_us": True, "service_id": service.id}

    def revert(self, runtime: runtime_mod.Runtime, host: str,
               result: Any, **kwargs: Any) -> None:
        if isinstance(result, ft.Failure) or not result or not result.get(
                "forced_down_by_us"):
            return
        LOG.warning("Reverting: unsetting forced_down of %s", host)
        update_service(runtime, host, result["service_id"],
                       forced_down=False)


class DisableService(_HostTask):
    """Disables the host's compute service so the scheduler stops placing
    servers there, and records whether this run disabled it.

    Reversion strategy: enable the service again, only if this run
    disabled it.
    """

    def __init__(self, host: str, **kwargs: Any):
        super().__init__(
            "disable", host, provides=constants.host_key("service", host),
            **kwargs,
        )

    def execute(self, runtime: runtime_mod.Runtime, host: str,
                request: dict[str, Any], run_id: str | None = None
                ) -> dict[str, Any]:
        service = _service(runtime, host, runtime.resuming)
        move = request_mod.MoveRequest.from_dict(request)
        if not service.enabled:
            # A resumed run may find the service disabled by itself, before
            # it could record so: its reason names the run.
            ours = bool(run_id) and f"(run {run_id})" in (
                service.disabled_reason or "")
            if not ours:
                LOG.info("The compute service of %s was disabled already "
                         "(%s)", host,
                         service.disabled_reason or "no reason given")
            return {"service_id": service.id, "disabled_by_us": ours,
                    "previous_reason": None if ours
                    else service.disabled_reason,
                    "reason": service.disabled_reason if ours else None}
        text = start_reason(move, run_id)
        # The cloud acted on is named before the first change is.
        runtime.before_write()
        LOG.info("Disabling the compute service of %s: %s", host, text)
        update_service(runtime, host, service.id, disabled=True,
                       disabled_reason=text)
        runtime.events.emit("host.disabled", host=host, reason=text)
        return {"service_id": service.id, "disabled_by_us": True,
                "previous_reason": None, "reason": text}

    def revert(self, runtime: runtime_mod.Runtime, host: str,
               result: Any, **kwargs: Any) -> None:
        if isinstance(result, ft.Failure) or not result or not result.get(
                "disabled_by_us"):
            return
        LOG.warning("Reverting: enabling the compute service of %s again",
                    host)
        update_service(runtime, host, result["service_id"], disabled=False)


class VerifyHostEmpty(_HostTask):
    """Lists what is left on the host once every server was dealt with.

    Reversion strategy: N/A (reads only).
    """

    def __init__(self, host: str, server_ids: list[str], **kwargs: Any):
        super().__init__(
            "verify-empty", host, provides=constants.host_key("left", host),
            requires=[constants.server_key("outcome", s) for s in server_ids],
            **kwargs,
        )

    def execute(self, runtime: runtime_mod.Runtime, host: str,
                **outcomes: Any) -> dict[str, Any]:
        left = runtime.compute.list_servers(host)
        if left:
            LOG.warning("%d server(s) are still on %s: %s", len(left), host,
                        ", ".join(f"{s.name} ({s.id}, {s.status})"
                                  for s in left))
        else:
            LOG.info("Host %s is empty", host)
        return {
            "empty": not left,
            "servers": [{"id": s.id, "name": s.name, "status": s.status}
                        for s in left],
        }


class FinalizeService(_HostTask):
    """Leaves the service as the run's outcome says: an emptied host stays
    disabled with a reason that says it was evacuated (or is enabled with
    --enable-after); after an interruption, a service this run disabled is
    enabled again.

    Reversion strategy: N/A (runs last).
    """

    def __init__(self, host: str, **kwargs: Any):
        super().__init__(
            "finalize", host, provides=constants.host_key("result", host),
            rebind={"service": constants.host_key("service", host),
                    "left": constants.host_key("left", host)},
            **kwargs,
        )

    def execute(self, runtime: runtime_mod.Runtime, host: str,
                request: dict[str, Any], service: dict[str, Any],
                left: dict[str, Any], run_id: str | None = None
                ) -> dict[str, Any]:
        move = request_mod.MoveRequest.from_dict(request)
        service_id = service["service_id"]
        by_us = service["disabled_by_us"]
        result = {"host": host, "empty": left["empty"],
                  "left": left["servers"], "disabled_by_us": by_us}
        if move.op is request_mod.Operation.MAINTENANCE_ENTER and not (
                runtime.stopping and by_us and not left["empty"]):
            # In maintenance, emptied or not, until 'host-maintenance exit'.
            text = service.get("reason") or start_reason(move, run_id)
            update_service(runtime, host, service_id, disabled=True,
                           disabled_reason=text)
            return dict(result, service="disabled", reason=text)
        if left["empty"]:
            if move.enable_after:
                LOG.info("Host %s is empty; enabling it (--enable-after)",
                         host)
                update_service(runtime, host, service_id, disabled=False)
                return dict(result, service="enabled")
            text = markers.reason(f"evacuated by {move.operation}", run_id)
            update_service(runtime, host, service_id, disabled=True,
                           disabled_reason=text)
            return dict(result, service="disabled", reason=text)
        if runtime.stopping and by_us:
            LOG.warning("Interrupted: enabling the compute service of %s "
                        "again (this run disabled it)", host)
            update_service(runtime, host, service_id, disabled=False)
            return dict(result, service="enabled")
        if by_us:
            text = markers.reason(
                f"{move.operation} incomplete, {len(left['servers'])} "
                "server(s) left", run_id,
            )
            update_service(runtime, host, service_id, disabled=True,
                           disabled_reason=text)
            return dict(result, service="disabled", reason=text)
        return dict(result, service="unchanged")
