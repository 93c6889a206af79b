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
"""Plain, serialisable records of what Nova told us.

The compute access layer turns Nova's JSON into these frozen dataclasses, and
tasks pass them between each other as plain dicts (``to_dict``), so that flow
details persist without SDK objects, credentials or tokens in them.
"""

import dataclasses
import datetime
from typing import Any, Self

#: Migration statuses after which Nova changes nothing more.
MIGRATION_DONE_STATUSES = frozenset(
    {"completed", "confirmed", "reverted", "done"}
)
MIGRATION_FAILED_STATUSES = frozenset({"failed", "error", "cancelled"})
MIGRATION_FINAL_STATUSES = MIGRATION_DONE_STATUSES | MIGRATION_FAILED_STATUSES
#: Statuses of a live migration that Nova still works on.
LIVE_MIGRATION_ACTIVE_STATUSES = frozenset(
    {"accepted", "queued", "preparing", "running", "post-migrating"}
)

POWER_STATE_RUNNING = 1
POWER_STATE_PAUSED = 3
POWER_STATE_SHUTDOWN = 4


class _Record:
    """Round-trips a frozen dataclass through plain dicts."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Flavor(_Record):
    """The flavor of a server, as embedded in it (microversion 2.47+)."""

    name: str
    ram_mb: int
    vcpus: int
    disk_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    id: str | None = None
    #: The flavor's extra specs, as Nova shows them to an admin (embedded
    #: in a server from microversion 2.47, in a flavor from 2.61). Two
    #: flavors compare by their sizes and names, not by these.
    extra_specs: dict[str, str] = dataclasses.field(default_factory=dict,
                                                    compare=False)

    @classmethod
    def from_server_flavor(cls, data: dict[str, Any]) -> Self:
        return cls(
            name=data.get("original_name") or data.get("name") or "",
            ram_mb=int(data.get("ram") or 0),
            vcpus=int(data.get("vcpus") or 0),
            disk_gb=int(data.get("disk") or 0),
            ephemeral_gb=int(data.get("ephemeral") or 0),
            swap_mb=int(data.get("swap") or 0),
            id=data.get("id"),
            extra_specs=_specs(data.get("extra_specs")),
        )

    @classmethod
    def from_flavor(cls, data: dict[str, Any]) -> Self:
        return cls(
            name=data.get("name") or "",
            ram_mb=int(data.get("ram") or 0),
            vcpus=int(data.get("vcpus") or 0),
            disk_gb=int(data.get("disk") or 0),
            ephemeral_gb=int(data.get("OS-FLV-EXT-DATA:ephemeral") or 0),
            swap_mb=int(data.get("swap") or 0),
            id=data.get("id"),
            extra_specs=_specs(data.get("extra_specs")),
        )


@dataclasses.dataclass(frozen=True)
class Server(_Record):
    """What the flows need to know of a server."""

    id: str
    name: str
    status: str
    host: str | None
    flavor: dict[str, Any]
    task_state: str | None = None
    vm_state: str | None = None
    power_state: int | None = None
    hypervisor_hostname: str | None = None
    locked: bool = False
    locked_reason: str | None = None
    config_drive: bool = False
    volumes: tuple[str, ...] = ()
    volume_backed: bool = False
    project_id: str | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    #: When Nova last changed the server (its clock): a migration of it
    #: recorded before then is not one started since.
    updated: str | None = None

    @property
    def flavor_info(self) -> Flavor:
        return Flavor.from_dict(self.flavor)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Self:
        """Build from a server of ``GET /servers/{id}`` (2.47 or later)."""
        volumes = tuple(
            v["id"] for v in data.get("os-extended-volumes:volumes_attached")
            or ()
        )
        flavor = Flavor.from_server_flavor(data.get("flavor") or {})
        return cls(
            id=data["id"],
            name=data.get("name") or "",
            status=data.get("status") or "UNKNOWN",
            host=data.get("OS-EXT-SRV-ATTR:host"),
            flavor=flavor.to_dict(),
            task_state=data.get("OS-EXT-STS:task_state"),
            vm_state=data.get("OS-EXT-STS:vm_state"),
            power_state=data.get("OS-EXT-STS:power_state"),
            hypervisor_hostname=data.get(
                "OS-EXT-SRV-ATTR:hypervisor_hostname"
            ),
            locked=bool(data.get("locked")),
            locked_reason=data.get("locked_reason"),
            config_drive=str(data.get("config_drive") or "").lower()
            in ("true", "1", "yes"),
            volumes=volumes,
            volume_backed=not data.get("image"),
            project_id=data.get("tenant_id"),
            metadata=dict(data.get("metadata") or {}),
            updated=data.get("updated"),
        )


#: Nova's server group policies (microversion 2.64 names them ``policy``).
AFFINITY = "affinity"
ANTI_AFFINITY = "anti-affinity"
SOFT_AFFINITY = "soft-affinity"
SOFT_ANTI_AFFINITY = "soft-anti-affinity"


@dataclasses.dataclass(frozen=True)
class ServerGroup(_Record):
    """A server group: its policy and its members (server ids)."""

    id: str
    name: str
    policy: str
    members: tuple[str, ...] = ()
    #: The policy's rules (2.64): ``max_server_per_host`` for
    #: anti-affinity.
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)
    project_id: str | None = None

    @property
    def hard(self) -> bool:
        """Whether Nova's scheduler enforces the policy (not soft-)."""
        return self.policy in (AFFINITY, ANTI_AFFINITY)

    @property
    def max_per_host(self) -> int:
        """Members an anti-affinity group allows on one host."""
        try:
            return max(1, int(self.rules.get("max_server_per_host") or 1))
        except (TypeError, ValueError):
            return 1

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Self:
        """Build from ``GET /os-server-groups`` (2.64 or later; older
        answers name the policy in a list, ``policies``)."""
        policy = data.get("policy") or next(
            iter(data.get("policies") or ()), "")
        return cls(
            id=data["id"],
            name=data.get("name") or "",
            policy=policy,
            members=tuple(data.get("members") or ()),
            rules=dict(data.get("rules") or {}),
            project_id=data.get("project_id"),
        )


@dataclasses.dataclass(frozen=True)
class Migration(_Record):
    """A row of Nova's migrations, with progress where Nova gives it."""

    id: int
    server_id: str
    status: str
    migration_type: str | None = None
    source_compute: str | None = None
    dest_compute: str | None = None
    source_node: str | None = None
    dest_node: str | None = None
    dest_host: str | None = None
    old_flavor: str | None = None
    new_flavor: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    uuid: str | None = None
    memory_total: int | None = None
    memory_processed: int | None = None
    memory_remaining: int | None = None
    disk_total: int | None = None
    disk_processed: int | None = None
    disk_remaining: int | None = None

    @property
    def is_final(self) -> bool:
        return self.status in MIGRATION_FINAL_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in MIGRATION_FAILED_STATUSES

    @property
    def bytes_processed(self) -> int | None:
        if self.memory_processed is None:
            return None
        return (self.memory_processed or 0) + (self.disk_processed or 0)

    @property
    def bytes_total(self) -> int | None:
        if self.memory_total is None:
            return None
        return (self.memory_total or 0) + (self.disk_total or 0)

    @property
    def percent(self) -> float | None:
        total, done = self.bytes_total, self.bytes_processed
        if not total or done is None:
            return None
        return min(100.0, 100.0 * done / total)

    def with_progress(self, other: "Migration") -> "Migration":
        """This record with the progress fields of ``other``."""
        return dataclasses.replace(
            self,
            memory_total=other.memory_total,
            memory_processed=other.memory_processed,
            memory_remaining=other.memory_remaining,
            disk_total=other.disk_total,
            disk_processed=other.disk_processed,
            disk_remaining=other.disk_remaining,
        )

    @classmethod
    def from_api(
        cls, data: dict[str, Any], server_id: str | None = None
    ) -> Self:
        """Build from ``/os-migrations`` or ``/servers/{id}/migrations``."""
        return cls(
            id=int(data["id"]),
            server_id=data.get("instance_uuid") or data.get("server_uuid")
            or server_id or "",
            status=data.get("status") or "",
            migration_type=data.get("migration_type")
            or ("live-migration" if "memory_total_bytes" in data else None),
            source_compute=data.get("source_compute"),
            dest_compute=data.get("dest_compute"),
            source_node=data.get("source_node"),
            dest_node=data.get("dest_node"),
            dest_host=data.get("dest_host"),
            old_flavor=_str_or_none(data.get("old_instance_type_id")),
            new_flavor=_str_or_none(data.get("new_instance_type_id")),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            uuid=data.get("uuid"),
            memory_total=data.get("memory_total_bytes"),
            memory_processed=data.get("memory_processed_bytes"),
            memory_remaining=data.get("memory_remaining_bytes"),
            disk_total=data.get("disk_total_bytes"),
            disk_processed=data.get("disk_processed_bytes"),
            disk_remaining=data.get("disk_remaining_bytes"),
        )


@dataclasses.dataclass(frozen=True)
class Service(_Record):
    """A nova-compute service."""

    id: str
    host: str
    binary: str
    status: str
    state: str
    disabled_reason: str | None = None
    forced_down: bool = False
    zone: str | None = None

    @property
    def up(self) -> bool:
        return self.state == "up"

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Self:
        return cls(
            id=str(data["id"]),
            host=data["host"],
            binary=data.get("binary") or "",
            status=data.get("status") or "",
            state=data.get("state") or "",
            disabled_reason=data.get("disabled_reason"),
            forced_down=bool(data.get("forced_down")),
            zone=data.get("zone"),
        )


@dataclasses.dataclass(frozen=True)
class HostCapacity(_Record):
    """Free room on a compute host, as placement counts it."""

    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int

    def fits(self, flavor: Flavor) -> bool:
        return (
            flavor.vcpus <= self.vcpus
            and flavor.ram_mb <= self.ram_mb
            and _flavor_disk_gb(flavor) <= self.disk_gb
        )

    def minus(self, flavor: Flavor) -> "HostCapacity":
        return dataclasses.replace(
            self,
            vcpus=self.vcpus - flavor.vcpus,
            ram_mb=self.ram_mb - flavor.ram_mb,
            disk_gb=self.disk_gb - _flavor_disk_gb(flavor),
        )

    def plus(self, flavor: Flavor) -> "HostCapacity":
        return dataclasses.replace(
            self,
            vcpus=self.vcpus + flavor.vcpus,
            ram_mb=self.ram_mb + flavor.ram_mb,
            disk_gb=self.disk_gb + _flavor_disk_gb(flavor),
        )


@dataclasses.dataclass(frozen=True)
class ActionEvent(_Record):
    """One event of an instance action (``os-instance-actions``)."""

    event: str
    result: str | None
    start_time: str | None
    finish_time: str | None
    host: str | None = None
    details: str | None = None
    traceback: str | None = None


@dataclasses.dataclass(frozen=True)
class InstanceAction(_Record):
    """An instance action with its events, as far as policy shows them."""

    action: str
    request_id: str
    start_time: str | None
    message: str | None
    events: tuple[dict[str, Any], ...] = ()

    @property
    def failed_events(self) -> list[ActionEvent]:
        return [
            ActionEvent.from_dict(e) for e in self.events
            if (e.get("result") or "").lower() == "error"
        ]


def _flavor_disk_gb(flavor: Flavor) -> int:
    swap_gb = (flavor.swap_mb + 1023) // 1024
    return flavor.disk_gb + flavor.ephemeral_gb + swap_gb


def _specs(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_time(value: str | None) -> datetime.datetime | None:
    """Parse one of Nova's timestamps (naive ones are UTC)."""
    if not value:
        return None
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed
