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
"""ACME's checks: pinned servers stay put; metadata survives a move."""

from oslo_log import log as logging

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)

#: Servers whose metadata sets this key to "true" must not move.
PINNED_KEY = "acme:pinned"


class PinnedServers(base.PreflightCheck):
    """Servers pinned to their host (metadata acme:pinned=true) stay there.

    A host operation skips them, with the reason in the plan and the
    summary (the host is then reported not empty); moving a pinned server
    on its own is refused before anything is changed.

    Reversion strategy: N/A (checks change nothing).
    """

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        if server.metadata.get(PINNED_KEY, "").lower() != "true":
            return base.passed()
        why = f"pinned to {server.host} ({PINNED_KEY}=true)"
        if request.op.is_host_operation:
            return base.skip(why)
        return base.fail(why)


class MetadataKept(base.VerifyTask):
    """The server kept its metadata through the move.

    Reversion strategy: N/A (verifications change nothing; a failure rolls
    the server back where Nova can, and reports it failed).
    """

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: base.Moved,
        request: request_mod.MoveRequest,
    ) -> base.CheckResult:
        before = moved.before_server.metadata
        after = moved.after_server.metadata if moved.after_server else {}
        if before != after:
            return base.fail(f"metadata changed: {before} -> {after}")
        LOG.info("acme-metadata-kept: %s kept its %d metadata item(s)",
                 moved.server_id, len(after))
        return base.passed(f"{len(after)} item(s) kept")
