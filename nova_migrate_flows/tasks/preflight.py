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
"""Preflight checks: the plugins that look before anything is changed.

Each check gives every server a verdict: pass, warn, skip (the server is
left where it is, with the reason) or fail (the operation is refused, and
nothing is changed in the cloud). Operators choose and order them with
``[migration] preflight_tasks``; third parties add their own through the
``nova_migrate_flows.tasks`` entry points.
"""

import time
from typing import Any

from oslo_log import log as logging

from nova_migrate_flows import exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.moves import planning, registry
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)


class ServerStateCheck(base.PreflightCheck):
    """The server is in a state the operation can move, and is not busy.

    A server that is busy with a live migration already (a rerun, or a
    resume) passes: its migration is adopted rather than started again. A
    server busy with another task is waited for, ``[migration] busy_wait``
    seconds at most (all of them at once), then read again; one still busy
    is skipped (refused, when it is the one server asked for), and one
    deleted meanwhile is skipped. Locked servers are moved (with admin
    credentials) and reported, unless ``[migration] move_locked`` is
    False. A running server whose flavor Nova does not live-migrate goes
    as ``[drain] non_live_servers`` says, with a warning.

    Reversion strategy: N/A (a check changes nothing).
    """

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        servers: dict[str, dict[str, Any]],
        request: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        move = request_mod.MoveRequest.from_dict(request)
        parsed = {sid: models.Server.from_dict(s)
                  for sid, s in servers.items()}
        waited, fresh = _wait_while_busy(runtime, parsed, move)
        verdicts = {}
        for server_id, server in parsed.items():
            if server_id not in fresh:
                verdict = self.check(runtime, server, move)
            else:
                verdict = self._after_wait(runtime, server,
                                           fresh[server_id], move, waited)
            verdicts[server_id] = verdict.to_dict()
        return verdicts

    def _after_wait(
        self,
        runtime: runtime_mod.Runtime,
        before: models.Server,
        after: models.Server | None,
        request: request_mod.MoveRequest,
        waited: float,
    ) -> base.CheckResult:
        """The verdict on a server that was busy, read again."""
        if after is None:
            return base.skip(
                "gone: it was deleted while the preflight waited for its "
                f"task ({before.task_state}) to end; nothing to move"
            )
        left = planning.left_host(before, after, request)
        if left is not None:
            return base.skip(left)
        verdict = self.check(runtime, after, request, waited)
        if after != before:
            # The plan moves the server as it is now.
            return base.CheckResult(verdict.status, verdict.message,
                                    dict(verdict.data,
                                         server=after.to_dict()))
        return verdict

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
        waited: float = 0.0,
    ) -> base.CheckResult:
        single = not request.op.is_host_operation

        def refused(why: str) -> base.CheckResult:
            return base.fail(why) if single else base.skip(why)

        action, why = planning.planned_action(server, request)
        if server.task_state:
            # Busy first: the status of a server busy with a task (RESIZE,
            # REBOOT) is the task's, not one it stays in.
            if action is not None and registry.get(action).adopts(server):
                return base.passed(
                    "a live migration is in progress: it is adopted and "
                    "watched, not started again",
                    action=action,
                    adopt=True,
                )
            return refused(planning.busy_reason(server, waited))
        if action is None:
            return refused(why)
        detour = why if planning.detoured(server, request) else None
        if server.locked:
            locked = planning.locked_reason(server)
            if not runtime.conf.migration.move_locked:
                return refused(
                    f"{locked}: not moved ([migration] move_locked = "
                    "False); unlock it ('openstack server unlock') to move "
                    "it, or tell its owner"
                )
            return base.warn(
                "; ".join([f"{locked}: moved anyway with admin rights; tell"
                           " its owner"] + ([detour] if detour else [])),
                action=action,
            )
        if detour is not None:
            return base.warn(detour, action=action)
        return base.passed(why, action=action)


def _wait_while_busy(
    runtime: runtime_mod.Runtime,
    servers: dict[str, models.Server],
    request: request_mod.MoveRequest,
) -> tuple[float, dict[str, models.Server | None]]:
    """Wait, ``[migration] busy_wait`` seconds at most, for the servers
    busy with a task of their own (not a move this run adopts) to finish
    it; the time given, and those servers as they are now (None: gone)."""
    limit = float(runtime.conf.migration.busy_wait)
    busy = []
    for server in servers.values():
        if not server.task_state:
            continue
        action, _ = planning.planned_action(server, request)
        if action is not None and registry.get(action).adopts(server):
            continue
        busy.append(server.id)
    if not busy or limit <= 0:
        return 0.0, {}
    LOG.info("Waiting up to %g s for %d busy server(s) to finish their "
             "task", limit, len(busy))
    fresh: dict[str, models.Server | None] = {}
    deadline = time.monotonic() + limit
    delay = 0.2
    while True:
        for server_id in busy:
            try:
                fresh[server_id] = runtime.compute.get_server(server_id)
            except exceptions.NotFound:
                fresh[server_id] = None
        busy = [sid for sid in busy
                if (now := fresh[sid]) is not None and now.task_state]
        left = deadline - time.monotonic()
        if not busy or left <= 0:
            return limit, fresh
        time.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)


class ServerGroupCheck(base.PreflightCheck):
    """Members of server groups move only as their policy lets them.

    Reads every server group once. Hard affinity: members that share a
    host are left in place (Nova's scheduler moves none of them one by
    one), and a member whose others are elsewhere joins them. Hard
    anti-affinity: an explicit target that holds a member is refused, the
    members no host left can take are left in place, and the members that
    move go one at a time. Soft policies are noted.

    Reversion strategy: N/A (a check changes nothing).
    """

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        servers: dict[str, dict[str, Any]],
        request: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        move = request_mod.MoveRequest.from_dict(request)
        parsed = {sid: models.Server.from_dict(s)
                  for sid, s in servers.items()}
        verdicts = {sid: base.passed().to_dict() for sid in parsed}
        groups = [g for g in runtime.cloud.server_groups()
                  if any(m in parsed for m in g.members)]
        if not groups:
            return verdicts
        moving = [sid for sid, server in parsed.items()
                  if planning.planned_action(server, move)[0] is not None]
        found = planning.group_verdicts(
            parsed, moving, groups, runtime.cloud.other_server, move,
            runtime.cloud.services(),
        )
        for server_id, verdict in found.items():
            verdicts[server_id] = base.CheckResult(
                verdict.status, verdict.message, verdict.data).to_dict()
        return verdicts


class SourceServiceCheck(base.PreflightCheck):
    """The compute service of the server's host is up (down for evacuate).

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        if not server.host:
            return base.passed("on no host: nothing to check")
        services = runtime.cloud.services()
        service = services.get(server.host)
        if service is None:
            return base.fail(
                f"no nova-compute service on the server's host {server.host}"
            )
        kind = planning.kind_of(request)
        if kind.source_must_be_down:
            if service.up and not service.forced_down:
                if request.force_down:
                    return base.passed(
                        f"compute service on {service.host} is up: it is "
                        "forced down first (--force-down)"
                    )
                return base.fail(
                    f"the compute service on {service.host} is up: "
                    "host-evacuate is for failed hosts; use "
                    "host-evacuate-live, or --force-down if the host is "
                    "really dead"
                )
            return base.passed(f"compute service on {service.host} is down")
        if not service.up:
            return base.fail(
                f"the compute service on {service.host} is down: Nova cannot"
                " migrate from it; use host-evacuate for a failed host"
            )
        return base.passed()


class TargetHostCheck(base.PreflightCheck):
    """The target host, when given, is a different, up, enabled host with
    room for the server.

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        target = request.target_host
        if not target:
            return base.passed("Nova's scheduler chooses the target")
        services = runtime.cloud.services()
        service = services.get(target)
        if service is None:
            known = ", ".join(sorted(services)) or "none"
            return base.fail(
                f"target host {target}: no nova-compute service there "
                f"(hosts: {known})"
            )
        if target == server.host:
            return base.fail(
                f"target host {target} is the server's own host"
            )
        if not service.up:
            return base.fail(f"target host {target}: its compute service "
                             "is down")
        if not service.enabled:
            reason = f" ({service.disabled_reason})" \
                if service.disabled_reason else ""
            return base.fail(
                f"target host {target}: its compute service is "
                f"disabled{reason}"
            )
        flavor = _flavor_for(runtime, server, request)
        capacity = runtime.cloud.capacities().get(target)
        if capacity is not None and not capacity.fits(flavor):
            return base.fail(
                f"target host {target} has no room for {flavor.name} "
                f"({_needs(flavor)}; free: {_free(capacity)})"
            )
        return base.passed()


class StorageCheck(base.PreflightCheck):
    """Decides block migration, and reports volume-backed servers and
    attached volumes.

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        if not planning.moves_live(request):
            return base.passed()
        mode = request.block_migration_value
        notes = []
        if server.volume_backed:
            notes.append("volume-backed (root disk on Cinder)")
        if server.volumes:
            notes.append(
                f"{len(server.volumes)} Cinder volume(s) attached (needs "
                "libvirt 1.2.17 or later)"
            )
        if mode is True and server.volume_backed:
            notes.append("block migration of a volume-backed server copies "
                         "only its local disks")
        described = {True: "block migration", False: "shared storage",
                     "auto": "Nova decides"}[mode]
        message = "; ".join([described] + notes)
        if notes:
            return base.warn(message, block_migration=mode)
        return base.passed(message, block_migration=mode)


class ConfigDriveCheck(base.PreflightCheck):
    """An iso9660 config drive cannot live-migrate on local storage.

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        if not server.config_drive or not planning.moves_live(request):
            return base.passed()
        migration = runtime.conf.migration
        if migration.config_drive_format != "iso9660":
            return base.passed(f"{migration.config_drive_format} config "
                               "drive")
        mode = request.block_migration_value
        local = mode is True or (
            mode == "auto" and migration.instance_storage == "local"
        )
        if not local:
            return base.passed("iso9660 config drive on shared storage")
        return base.fail(
            "has an iso9660 config drive, which libvirt cannot live-migrate "
            "on local storage: set [DEFAULT] config_drive_format = vfat in "
            "nova.conf (then [migration] config_drive_format = vfat here), "
            "or stop forcing config drives (force_config_drive = false; "
            "OpenStack-Ansible: nova_force_config_drive: False)"
        )


class FlavorDisksCheck(base.PreflightCheck):
    """Ephemeral and swap disks slow a live migration down: say so.

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        if not planning.moves_live(request):
            return base.passed()
        flavor = server.flavor_info
        disks = []
        if flavor.ephemeral_gb:
            disks.append(f"{flavor.ephemeral_gb} GB ephemeral")
        if flavor.swap_mb:
            disks.append(f"{flavor.swap_mb} MB swap")
        if not disks:
            return base.passed()
        return base.warn(
            f"flavor {flavor.name} has {' and '.join(disks)}: copied too, "
            "they slow the live migration down"
        )


class CapacityCheck(base.PreflightCheck):
    """The servers fit on the hosts that stay enabled (placement's counts).

    Reversion strategy: N/A (a check changes nothing).
    """

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        servers: dict[str, dict[str, Any]],
        request: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        move = request_mod.MoveRequest.from_dict(request)
        capacities = runtime.cloud.capacities()
        parsed = [models.Server.from_dict(s) for s in servers.values()]
        if not capacities:
            unknown = base.warn("free capacity unknown (placement not "
                                "reachable): not checked")
            return {s.id: unknown.to_dict() for s in parsed}
        services = runtime.cloud.services()
        sources = set(move.hosts) | {s.host for s in parsed if s.host}
        if move.target_host:
            pool = {move.target_host}
        else:
            pool = {
                host for host, service in services.items()
                if service.up and service.enabled and host not in sources
                and host in capacities
            }
            if move.op is Operation.RESIZE:
                pool |= {
                    host for host in sources
                    if host in capacities and services.get(host)
                    and services[host].up and services[host].enabled
                }
        free = {host: capacities[host] for host in pool if host in capacities}
        verdicts: dict[str, dict[str, Any]] = {}
        movable = [
            s for s in parsed
            if planning.planned_action(s, move)[0] is not None
        ]
        for server in parsed:
            if server not in movable:
                verdicts[server.id] = base.passed("not moved").to_dict()
        flavors = {s.id: _flavor_for(runtime, s, move) for s in movable}
        ordered = sorted(
            movable,
            key=lambda s: (flavors[s.id].ram_mb, flavors[s.id].vcpus,
                           flavors[s.id].disk_gb),
            reverse=True,
        )
        for server in ordered:
            flavor = flavors[server.id]
            fitting = [
                host for host, room in free.items()
                if room.fits(flavor) and host != server.host
            ]
            if not fitting:
                where = ", ".join(
                    f"{h}: {_free(c)}" for h, c in sorted(free.items())
                ) or "no enabled host is left"
                verdicts[server.id] = base.fail(
                    f"no room for {flavor.name} ({_needs(flavor)}) on the "
                    f"hosts that stay enabled ({where})"
                ).to_dict()
                continue
            host = max(fitting, key=lambda h: free[h].ram_mb)
            free[host] = free[host].minus(flavor)
            verdicts[server.id] = base.passed(
                f"fits (e.g. on {host})").to_dict()
        return verdicts


class FlavorCheck(base.PreflightCheck):
    """For a resize: the new flavor exists, differs, and does not shrink
    the disk.

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        if request.op is not Operation.RESIZE:
            return base.passed()
        flavor = _flavor_for(runtime, server, request)
        old = server.flavor_info
        if flavor.name == old.name:
            return base.fail(f"the server already has flavor {old.name}")
        if flavor.disk_gb < old.disk_gb:
            return base.fail(
                f"flavor {flavor.name} has a smaller root disk "
                f"({flavor.disk_gb} GB) than {old.name} ({old.disk_gb} GB); "
                "Nova cannot shrink disks"
            )
        return base.passed(f"{old.name} -> {flavor.name}",
                           flavor_id=flavor.id)


def _flavor_for(
    runtime: runtime_mod.Runtime,
    server: models.Server,
    request: request_mod.MoveRequest,
) -> models.Flavor:
    if request.op is Operation.RESIZE and request.flavor:
        return runtime.cloud.flavor(request.flavor)
    return server.flavor_info


def _needs(flavor: models.Flavor) -> str:
    return f"{flavor.ram_mb} MB, {flavor.vcpus} vCPU, {flavor.disk_gb} GB"


def _free(capacity: models.HostCapacity) -> str:
    return (f"{capacity.ram_mb} MB, {capacity.vcpus} vCPU, "
            f"{capacity.disk_gb} GB free")
