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
"""Host evacuations that outlive their tokens, with a password and with an
application credential.

The sandbox's Keystone shortens the lifetime of the tokens it issues, or
revokes every token, while the tool runs; keystoneauth must fetch new
tokens and the run must end as if nothing happened. The tool goes through
a fault proxy that injects nothing: it shows every token request and every
401 the tool met.
"""

import threading
from typing import Any

import pytest

from nova_migrate_flows.sandbox import constants
from tests.functional import faultproxy, resilience
from tests.functional.operations import cli

pytestmark = pytest.mark.functional

CLOUDS = [constants.CLOUD_ADMIN, constants.CLOUD_APPCRED]
TOKENS = "POST /identity/v3/auth/tokens"
#: Token lifetime while the tool runs, shorter than the run.
SHORT_TTL = 2.0
SERVERS = 3


@pytest.fixture
def proxy(sandbox: Any) -> Any:
    with faultproxy.FaultProxy(sandbox.port) as started:
        yield started


@pytest.fixture
def token_ttl(sandbox: Any, sandbox_client: Any) -> Any:
    """Sets the lifetime of new tokens; restored after the test."""
    yield sandbox_client.set_token_ttl
    sandbox_client.set_token_ttl(sandbox.options["token_ttl"])


@pytest.fixture(autouse=True)
def restore(sdk: Any, sandbox_client: Any) -> Any:
    yield
    resilience.restore_services(sdk, sandbox_client)


def evacuated(ran: cli.Ran, servers: list[dict[str, Any]]) -> None:
    """The run ended well and moved every server."""
    assert ran.code == 0, ran.err
    assert [ran.result_of(s["id"])["status"] for s in servers] == [
        "migrated"] * len(servers)
    (host,) = ran.json["hosts"]
    assert host["empty"] is True


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_host_evacuation_outlives_short_lived_tokens(
        cloud, sandbox, boot_servers, proxy, token_ttl, capsys, tmp_path):
    servers = boot_servers("host1", count=SERVERS,
                           metadata=cli.server_metadata(duration=1))
    tool = resilience.Tool(capsys, sandbox, tmp_path, proxy, cloud=cloud)
    token_ttl(SHORT_TTL)

    ran = tool("host-evacuate-live", "host1", "--format", "json")

    evacuated(ran, servers)
    assert ran.json["elapsed_s"] > SHORT_TTL
    # keystoneauth renews a token that expires soon before using it.
    assert proxy.answered[(TOKENS, 201)] > 1
    assert len(set(proxy.issued_tokens)) == len(proxy.issued_tokens)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_host_evacuation_survives_revoked_tokens(
        cloud, sandbox, sdk, boot_servers, proxy, sandbox_client, capsys,
        tmp_path):
    servers = boot_servers("host1", count=SERVERS,
                           metadata=cli.server_metadata(duration=1))
    tool = resilience.Tool(capsys, sandbox, tmp_path, proxy, cloud=cloud)
    revoked: list[int] = []
    finished = threading.Event()

    def revoke_while_migrating() -> None:
        """Revoke every token once a migration runs, and once more a
        second later."""
        while not finished.wait(0.2):
            if any(m.status == "running" for s in servers
                   for m in cli.live_migrations(sdk, s["id"])):
                break
        for _ in range(2):
            if finished.is_set():
                return
            revoked.append(sandbox_client.revoke_tokens())
            finished.wait(1.0)

    revoker = threading.Thread(target=revoke_while_migrating)
    revoker.start()
    try:
        ran = tool("host-evacuate-live", "host1", "--format", "json")
    finally:
        finished.set()
        revoker.join()

    evacuated(ran, servers)
    assert len(revoked) == 2 and all(revoked), revoked
    refused = sum(count for (route, status), count in proxy.answered.items()
                  if status == 401 and route.startswith(("GET /compute",
                                                         "POST /compute",
                                                         "PUT /compute")))
    # Nova's gateway refused the revoked token, and keystoneauth got a new
    # one and sent the request again.
    assert refused >= 1, proxy.answered
    assert proxy.answered[(TOKENS, 201)] >= 2
