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
"""Verifications: the plugins that prove a server moved as it should.

Operators choose and order them with ``[migration] verify_tasks``; third
parties add their own through the ``nova_migrate_flows.tasks`` entry points
(subclass :class:`~nova_migrate_flows.tasks.base.VerifyTask`). They read
the server as the move left it (fetched once for all of them).
"""

from typing import Any

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.moves import registry
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import base


class MigrationCompleted(base.VerifyTask):
    """Nova's migration record says the move succeeded.

    Reversion strategy: N/A (a verification changes nothing).
    """

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        kind = registry.get(moved.action)
        if not kind.records_migration:
            return base.passed(f"Nova records no migration of a {kind.name}")
        migration = moved.migration_record
        if migration is None:
            return base.fail("no migration record")
        good = constants.SUCCESS_STATUSES.get(
            migration.migration_type or str(kind.migration_type), frozenset())
        if migration.status not in good:
            return base.fail(
                f"migration {migration.id} is {migration.status}, not "
                f"{' or '.join(sorted(good))}"
            )
        return base.passed(f"migration {migration.id} {migration.status}")


class HostChanged(base.VerifyTask):
    """The server is on another host (the requested one, when given).

    Reversion strategy: N/A (a verification changes nothing).
    """

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        after = moved.after_server
        if after is None or not after.host:
            return base.fail("the server has no host")
        if after.host == moved.source:
            return base.fail(f"the server is still on {moved.source}")
        if moved.requested_host and after.host != moved.requested_host:
            return base.fail(
                f"the server is on {after.host}, not on the requested "
                f"{moved.requested_host}"
            )
        return base.passed(f"{moved.source} -> {after.host}")


class ServerStateRestored(base.VerifyTask):
    """The server is in the state its kind of move leaves it in (the state
    it was in before, or VERIFY_RESIZE for a cold move), with no task_state.

    Reversion strategy: N/A (a verification changes nothing).
    """

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        after = moved.after_server
        before = moved.before_server
        if after is None:
            return base.fail("the server was not read after the move")
        if after.status == "ERROR":
            return base.fail(f"the server is in ERROR on {after.host}")
        if after.task_state:
            return base.fail(f"the server is still busy (task_state "
                             f"{after.task_state})")
        error = registry.get(moved.action).end_state_error(before, after)
        if error:
            return base.fail(error)
        return base.passed(after.status)


class FlavorApplied(base.VerifyTask):
    """A resized server has the new flavor; any other kept its own.

    Reversion strategy: N/A (a verification changes nothing).
    """

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        after = moved.after_server
        if after is None:
            return base.fail("the server was not read after the move")
        have = after.flavor_info.name
        if request.op is Operation.RESIZE and request.flavor:
            wanted = runtime.cloud.flavor(request.flavor).name
        else:
            wanted = moved.before_server.flavor_info.name
        if have != wanted:
            return base.fail(f"flavor {have}, expected {wanted}")
        return base.passed(have)


class ServerGroupPolicy(base.VerifyTask):
    """A server of a hard server group landed where its policy allows:
    beside its other members (affinity), or on a host holding no more of
    them than the policy allows (anti-affinity).

    It reads the group the plan knew (its members), and Nova for where
    they are now: one request for anti-affinity, one per other member for
    affinity; nothing for a server in no such group.

    Reversion strategy: N/A (a verification changes nothing).
    """

    def execute(  # type: ignore[override]
        self,
        runtime: runtime_mod.Runtime,
        moved: dict[str, Any],
        request: dict[str, Any],
        plan: dict[str, Any],
    ) -> dict[str, Any]:
        result = base.Moved.from_dict(moved)
        if result.not_moved:
            return base.skip(result.not_moved).to_dict()
        group = (plan.get(result.server_id) or {}).get("server_group")
        forced = request_mod.MoveRequest.from_dict(request).force
        return self.reported(
            self.policy_kept(runtime, result, group, forced))

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        """Without the plan, the server's group is not known."""
        return base.passed("no server group known")

    def policy_kept(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        group: dict[str, Any] | None,
        forced: bool = False,
    ) -> base.CheckResult:
        after = moved.after_server
        if not group or group.get("policy") not in (
                models.AFFINITY, models.ANTI_AFFINITY):
            return base.passed("in no hard server group")
        if after is None or not after.host:
            return base.fail("the server was not read after the move")
        others = [m for m in group.get("members") or ()
                  if m != moved.server_id]
        name = group.get("name") or group.get("id")
        if group["policy"] == models.ANTI_AFFINITY:
            beside = [s.name or s.id
                      for s in runtime.compute.list_servers(after.host)
                      if s.id in others]
            limit = int(group.get("max_per_host") or 1)
            if len(beside) + 1 > limit:
                return base.fail(
                    f"anti-affinity server group {name} broken: "
                    f"{after.host} holds {', '.join(sorted(beside))} too "
                    f"(the group allows {limit} per host)"
                )
            return base.passed(f"anti-affinity server group {name} kept")
        if forced:
            return base.passed(
                f"affinity server group {name}: forced past the scheduler; "
                "whole again once its other members follow")
        hosts = set()
        for member in others:
            try:
                hosts.add(runtime.compute.get_server(member).host)
            except exceptions.NotFound:
                continue
        hosts.discard(None)
        if hosts and after.host not in hosts:
            return base.fail(
                f"affinity server group {name} split: the server is on "
                f"{after.host}, its other members on "
                f"{', '.join(sorted(str(h) for h in hosts))}"
            )
        return base.passed(f"affinity server group {name} kept")
