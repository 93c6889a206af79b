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
"""What the flows need from a compute cloud, as one typed interface.

:class:`~nova_migrate_flows.compute.nova.NovaCompute` implements it over
openstacksdk against a real Nova; :class:`~nova_migrate_flows.compute.fake.
FakeCompute` implements it in memory for unit tests and benchmarks.
"""

import dataclasses
from typing import Any, Protocol

from nova_migrate_flows.compute import models


@dataclasses.dataclass(frozen=True)
class ActionResult:
    """What Nova answered to a server action."""

    #: ``x-openstack-request-id``: the key of the instance action.
    request_id: str | None
    #: Nova's clock when it accepted the request (its ``Date`` header),
    #: to tell the migration this request made from older ones.
    accepted_at: str | None


class Compute(Protocol):
    """Access to Nova (and placement) for the tasks of the flows."""

    def close(self) -> None:
        """Release the connection to the cloud."""

    def api_versions(self) -> tuple[str, str]:
        """The compute API's minimum and maximum microversions."""

    def prefetch(self) -> None:
        """Start what the first requests need (authentication, the
        versions) in the background, and return at once."""

    def target(self) -> dict[str, Any]:
        """Which cloud this acts on (``cloud``, its configuration file or
        auth URL, ``compute_endpoint``), for the log and the run's record.
        Nothing secret."""

    def get_server(self, server_id: str) -> models.Server:
        """The server with this id; NotFound when there is none."""

    def find_server(self, ref: str) -> models.Server:
        """The one server with this id or name; InvalidInput otherwise."""

    def list_servers(self, host: str) -> list[models.Server]:
        """Every server on ``host``, of every project."""

    def list_changed_servers(self, since: str) -> list[models.Server]:
        """Every server of every project that changed at or after
        ``since`` (Nova's clock, ISO 8601): one read for many servers."""

    def list_services(self) -> list[models.Service]:
        """Every nova-compute service."""

    def update_service(
        self,
        service_id: str,
        *,
        disabled: bool | None = None,
        disabled_reason: str | None = None,
        forced_down: bool | None = None,
    ) -> models.Service:
        """Enable, disable or force down a compute service."""

    def host_capacities(self) -> dict[str, models.HostCapacity]:
        """Free room per compute host; empty when it cannot be known."""

    def get_flavor(self, ref: str) -> models.Flavor:
        """The flavor with this id or name; NotFound when there is none."""

    def list_server_groups(self) -> list[models.ServerGroup]:
        """Every server group, of every project (``GET /os-server-groups
        ?all_projects=True``), with its policy, rules and members."""

    def live_migrate(
        self,
        server_id: str,
        host: str | None,
        block_migration: bool | str,
        force: bool = False,
    ) -> ActionResult:
        """Ask Nova to live-migrate a server (``os-migrateLive``)."""

    def cold_migrate(self, server_id: str, host: str | None) -> ActionResult:
        """Ask Nova to cold-migrate a server (``migrate``)."""

    def resize(self, server_id: str, flavor_id: str) -> ActionResult:
        """Ask Nova to resize a server to another flavor."""

    def confirm_resize(self, server_id: str) -> ActionResult:
        """Confirm a server's resize or cold migration."""

    def revert_resize(self, server_id: str) -> ActionResult:
        """Revert a server's resize or cold migration."""

    def evacuate(self, server_id: str, host: str | None) -> ActionResult:
        """Rebuild a server of a failed host elsewhere (``evacuate``)."""

    def start_server(self, server_id: str) -> ActionResult:
        """Power a server on."""

    def stop_server(self, server_id: str) -> ActionResult:
        """Power a server off."""

    def shelve(self, server_id: str) -> ActionResult:
        """Shelve the server (Nova offloads it at once or later, as
        ``shelved_offload_time`` says)."""

    def shelve_offload(self, server_id: str) -> ActionResult:
        """Offload a SHELVED server: it leaves its host."""

    def unshelve(self, server_id: str, host: str | None) -> ActionResult:
        """Unshelve the server, onto ``host`` if given (microversion
        2.91), else where the scheduler chooses."""

    def list_migrations(
        self,
        *,
        server_id: str | None = None,
        host: str | None = None,
        source_compute: str | None = None,
        status: str | None = None,
        migration_type: str | None = None,
        changes_since: str | None = None,
    ) -> list[models.Migration]:
        """Migration records (``GET /os-migrations``), newest first."""

    def server_migrations(self, server_id: str) -> list[models.Migration]:
        """In-progress live migrations of a server, with their progress."""

    def abort_migration(self, server_id: str, migration_id: int) -> None:
        """Abort an in-progress live migration."""

    def force_complete_migration(
        self, server_id: str, migration_id: int
    ) -> None:
        """Force an in-progress live migration to complete."""

    def instance_action(
        self, server_id: str, request_id: str
    ) -> models.InstanceAction | None:
        """An instance action with its events, or None."""

    def instance_actions(self, server_id: str) -> list[models.InstanceAction]:
        """The instance actions of a server, newest first (no events)."""
