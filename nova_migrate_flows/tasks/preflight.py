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

from typing import Any

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.moves import planning, registry
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import base


class ServerStateCheck(base.PreflightCheck):
    """The server is in a state the operation can move, and is not busy.

    A server that is busy with a live migration already (a rerun, or a
    resume) passes: its migration is adopted rather than started again.
    Locked servers are moved (with admin credentials) and reported.

    Reversion strategy: N/A (a check changes nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        single = not request.op.is_host_operation
        action, why = planning.planned_action(server, request)
        if action is None:
            return base.fail(why) if single else base.skip(why)
        if server.task_state:
            if registry.get(action).adopts(server):
                return base.passed(
                    "a live migration is in progress: it is adopted and "
                    "watched, not started again",
                    action=action,
                    adopt=True,
                )
            why = (
                f"busy: task_state {server.task_state}; wait for it to end"
            )
            return base.fail(why) if single else base.skip(why)
        if server.locked:
            reason = f" ({server.locked_reason})" if server.locked_reason \
                else ""
            return base.warn(
                f"locked{reason}: moved anyway with admin rights; tell its "
                "owner",
                action=action,
            )
        return base.passed(why, action=action)


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
        services = runtime.cloud.services()
        service = services.get(server.host or "")
        if service is None:
            return base.fail(
                f"no nova-compute service on the server's host {server.host}"
            )
        kind = registry.get(planning.kind_name(request))
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
