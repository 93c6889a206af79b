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
"""Unit tests of ACME's checks: plain objects in, verdicts out."""

import pytest
from nmf_acme_tasks import checks

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.tasks import base


def server(**metadata: str) -> models.Server:
    return models.Server(id="s1", name="db-1", status="ACTIVE",
                         host="compute01", flavor={}, metadata=metadata)


@pytest.mark.parametrize("operation, status", [
    ("host-evacuate-live", base.SKIP),
    ("live-migrate", base.FAIL),
], ids=["host-operation-skips", "single-server-refuses"])
def test_pinned_server(operation: str, status: str) -> None:
    check = checks.PinnedServers(plugin_name="acme-pinned")
    request = request_mod.MoveRequest(operation=operation)
    verdict = check.check(None, server(**{"acme:pinned": "true"}), request)
    assert verdict.status == status
    assert "pinned to compute01" in verdict.message


def test_unpinned_server_passes() -> None:
    check = checks.PinnedServers(plugin_name="acme-pinned")
    request = request_mod.MoveRequest(operation="host-evacuate-live")
    assert check.check(None, server(), request).status == base.PASS


def test_metadata_changed_fails() -> None:
    task = checks.MetadataKept(plugin_name="acme-metadata-kept",
                               server_id="s1")
    moved = base.Moved(
        server_id="s1", action="live-migrate", source="compute01",
        before=server(owner="ops").to_dict(),
        after=server(owner="ops", extra="x").to_dict(),
    )
    request = request_mod.MoveRequest(operation="live-migrate")
    assert task.verify(None, moved, request).status == base.FAIL
