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
"""Watching moves through Nova's versioned notifications, on a sandbox
whose Nova sends them to a real RabbitMQ (``NMF_TEST_RABBIT_URL``).

The safety-net polls are set far apart (``fallback_interval``) and each
run is bounded by a timeout well below it: a move whose end was not seen
through a notification would leave its run waiting past the bound.
"""

import json
import os

import pytest

from nova_migrate_flows.sandbox import constants, control
from tests import external
from tests.functional import conftest
from tests.functional.operations import cli

pytestmark = [pytest.mark.functional, pytest.mark.rabbitmq]

#: The runs here must end well before one fallback poll would come.
FALLBACK = 600
BOUND = 240


@pytest.fixture(scope="module")
def notifying(tmp_path_factory):
    """A sandbox (3 computes) whose Nova sends versioned notifications to
    the test RabbitMQ."""
    url = external.address("rabbitmq")
    state_dir = tmp_path_factory.mktemp("notifying-sandbox")
    info = control.start(
        state_dir, computes=3,
        live_migration_duration=conftest.LIVE_MIGRATION_DURATION,
        cold_migration_delay=conftest.COLD_MIGRATION_DELAY,
        watch_pid=os.getpid(), notifications=url)
    try:
        yield info
    finally:
        control.stop(state_dir)


@pytest.fixture
def notifying_sdk(notifying):
    return conftest.connect(notifying)


@pytest.fixture
def boot(notifying, notifying_sdk):
    yield from conftest.booting(notifying, notifying_sdk)


@pytest.fixture(autouse=True)
def _services_enabled_again(notifying_sdk):
    """A test that leaves a host disabled (a failed drain does) gives it
    back enabled."""
    yield
    for service in notifying_sdk.compute.services(binary="nova-compute"):
        if service.status != "enabled":
            notifying_sdk.compute.enable_service(service, service.host,
                                                 "nova-compute")


def watch_config(tmp_path, topics="versioned_notifications",
                 fallback=FALLBACK, extra=""):
    path = tmp_path / "watch.conf"
    path.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
        "[migration]\npoll_interval = 0.5\npoll_interval_min = 0.1\n"
        + extra +
        f"[watch]\nsource = notifications\n"
        f"transport_url = {external.address('rabbitmq')}\n"
        f"topics = {topics}\nfallback_interval = {fallback}\n")
    return str(path)


def drain(notifying, config, *hosts):
    """``host-evacuate-live`` as a process of its own, bounded."""
    process = cli.spawn_cli(notifying.config_file, config,
                            "host-evacuate-live", *hosts, "--enable-after",
                            "--format", "json")
    try:
        out, err = process.communicate(timeout=BOUND)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def test_a_drain_ends_on_nova_s_notifications(notifying, notifying_sdk,
                                              boot, tmp_path):
    servers = boot("host1", count=3, metadata=cli.server_metadata(
        duration=2)) + boot("host2", count=2, metadata=cli.server_metadata(
            duration=2))
    stats = control.SandboxClient(notifying.state_dir)
    stats.reset_stats()

    code, out, err = drain(notifying, watch_config(tmp_path), "host1",
                           "host2")

    assert code == 0, err
    assert "Listening to Nova's notifications" in err
    result = json.loads(out)
    assert {r["status"] for r in result["results"]} == {"migrated"}
    for server in servers:
        after = notifying_sdk.compute.get_server(server["id"])
        assert after.compute_host not in ("host1", "host2")
    requests = stats.request_stats()["services"]["compute"]
    # Where the requests went, for the closing note and regressions.
    print(f"\ncompute requests with notifications: {requests['total']} for "
          f"{len(servers)} servers: {requests['requests']}")
    # A bound, not a figure: the polls of a run whose ends come from
    # notifications, a few per move (starts, ends, foreseen ends).
    assert requests["requests"]["GET /os-migrations"] <= 3 * len(servers)


def test_without_notifications_the_fallback_polls_end_the_drain(
        notifying, notifying_sdk, boot, tmp_path):
    (server,) = boot("host1", metadata=cli.server_metadata(duration=1))

    # Nothing is ever sent on this topic: as if every notification of the
    # run were lost.
    code, out, err = drain(notifying, watch_config(
        tmp_path, topics="nobody_sends_here", fallback=3), "host1")

    assert code == 0, err
    (outcome,) = json.loads(out)["results"]
    assert outcome["status"] == "migrated"
    assert notifying_sdk.compute.get_server(
        server["id"]).compute_host != "host1"


def test_a_failing_migration_fails_as_with_polling(notifying, notifying_sdk,
                                                   boot, tmp_path):
    (bad,) = boot("host1", metadata=cli.server_metadata(
        result=constants.RESULT_FAIL))

    code, out, err = drain(notifying, watch_config(tmp_path), "host1")

    assert code == 1, err
    (outcome,) = json.loads(out)["results"]
    assert outcome["status"] == "failed"
    after = notifying_sdk.compute.get_server(bad["id"])
    assert (after.compute_host, after.status) == ("host1", "ACTIVE")
    (migration,) = cli.live_migrations(notifying_sdk, bad["id"])
    assert migration.status == "failed"


def test_a_hanging_migration_times_out_as_with_polling(
        notifying, notifying_sdk, boot, tmp_path):
    (stuck,) = boot("host1", metadata=cli.server_metadata(
        result=constants.RESULT_HANG))

    code, out, err = drain(notifying, watch_config(
        tmp_path, extra="completion_timeout_min = 3\n"
        "completion_timeout_per_gib = 1\n"), "host1")

    assert code == 1, err
    (outcome,) = json.loads(out)["results"]
    assert outcome["status"] == "failed"
    assert "completion timeout" in outcome["reason"]
    (migration,) = cli.live_migrations(notifying_sdk, stuck["id"])
    assert migration.status == "cancelled"
    assert notifying_sdk.compute.get_server(
        stuck["id"]).compute_host == "host1"
