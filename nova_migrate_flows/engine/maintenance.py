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
"""Host maintenance seen from the records: which hosts are in
maintenance, and what their ``enter`` runs moved away.

Nova's compute service says whether a host is in maintenance and by which
run (the marker of :mod:`nova_migrate_flows.tasks.markers`); that run's
record says which servers moved, from where to where, with which kind of
move, and what they were before.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import models
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.tasks import markers


def check_exit(hosts: Sequence[str],
               services: Iterable[models.Service]) -> None:
    """Refuse, before anything changes, to bring back a host Nova does not
    know or whose compute service is not up (InvalidInput)."""
    by_host = {s.host: s for s in services}
    for host in hosts:
        service = by_host.get(host)
        if service is None:
            raise exceptions.InvalidInput(
                f"host {host}: no nova-compute service there (hosts: "
                f"{', '.join(sorted(by_host)) or 'none'})")
        if not service.up:
            raise exceptions.InvalidInput(
                f"host {host}: its compute service is down; start "
                "nova-compute there (or wait for it to report) before "
                "bringing the host back")


def returns(
    records: records_mod.Records | None,
    services: Iterable[models.Service],
    hosts: Sequence[str],
) -> dict[str, list[dict[str, Any]]]:
    """For each host in maintenance, the servers its ``enter`` run moved
    away (see :func:`moved_away`); hosts not in maintenance have none."""
    by_host = {s.host: s for s in services}
    found: dict[str, list[dict[str, Any]]] = {}
    for host in hosts:
        service = by_host.get(host)
        marker = markers.parse_marker(service.disabled_reason) \
            if service is not None and not service.enabled else None
        if marker is None:
            found[host] = []
            continue
        if records is None:
            raise exceptions.ConfigurationError(
                "--move-back needs the persistence backend that recorded "
                f"run {marker.run_id} (the enter run of {host})")
        book = records.get(marker.run_id)
        state = book.meta.get("state")
        if state in (constants.RunState.RUNNING,
                     constants.RunState.INTERRUPTED):
            raise exceptions.InvalidInput(
                f"host {host}: its enter run {marker.run_id} is {state}; "
                f"finish it first ('nova-migrate-flow resume "
                f"{marker.run_id}')")
        found[host] = moved_away(book, host)
    return found


def moved_away(book: Any, host: str) -> list[dict[str, Any]]:
    """The servers a run moved off ``host`` and verified: id, name,
    destination, kind of move, and the server as it was before."""
    plan = records_mod.recorded_plan(book)
    rows = []
    for server in records_mod.describe(book)["servers"]:
        if server["status"] != constants.ServerStatus.MIGRATED or \
                server["source"] != host or server["server"] not in plan:
            continue
        rows.append({
            "server": server["server"],
            "name": server["name"],
            "destination": server["destination"],
            "action": server["action"],
            "before": plan[server["server"]]["server"],
        })
    return rows


def status(
    services: Iterable[models.Service],
    records: records_mod.Records | None,
    hosts: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """``host-maintenance status``: every host in maintenance (or each of
    ``hosts``), since when, by which run, what it moved and where, and
    whether its compute service is up now."""
    rows = []
    for service in sorted(services, key=lambda s: s.host):
        if hosts and service.host not in hosts:
            continue
        marker = markers.parse_marker(service.disabled_reason) \
            if not service.enabled else None
        if marker is None and not hosts:
            continue
        row: dict[str, Any] = {
            "host": service.host,
            "maintenance": marker is not None,
            "since": marker.since if marker else None,
            "run_id": marker.run_id if marker else None,
            "reason": marker.reason if marker else None,
            "service": service.status,
            "disabled_reason": service.disabled_reason,
            "up": service.up,
            "moved": None,
            "destinations": {},
        }
        if marker is not None and records is not None:
            row.update(_moved(records, marker.run_id, service.host))
        rows.append(row)
    missing = sorted(set(hosts) - {r["host"] for r in rows})
    if missing:
        raise exceptions.InvalidInput(
            f"host {missing[0]}: no nova-compute service there")
    return rows


def _moved(records: records_mod.Records, run_id: str,
           host: str) -> dict[str, Any]:
    try:
        book = records.get(run_id)
    except exceptions.InvalidInput:
        return {"run_state": "unknown (not in this persistence backend)"}
    moved = moved_away(book, host)
    where: dict[str, int] = {}
    for row in moved:
        where[row["destination"]] = where.get(row["destination"], 0) + 1
    return {"run_state": book.meta.get("state"), "moved": len(moved),
            "destinations": dict(sorted(where.items()))}
