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
"""Fixtures of the functional tests: one sandbox cloud per session.

``sandbox`` starts a sandbox with 4 computes in a temporary directory and
stops it at the end of the session; with ``NMF_SANDBOX_STATE_DIR`` set, it
uses the sandbox already running there instead (and leaves it running).
Without Nova installed the tests fail, they are not skipped.

``old_nova_sandbox`` starts a second one, with 3 computes, that runs an
older Nova (Zed: Nova 26, compute API 2.93) with the interpreter named by
``NMF_TEST_OLD_NOVA_PYTHON`` (``tools/run-tests.sh`` builds that
virtualenv); without it, the tests that use it fail.
"""

import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import openstack.config
import openstack.exceptions
import pytest

from nova_migrate_flows.sandbox import constants, control

#: Default duration of a live migration in the test sandbox (the tests set
#: their own per server where timing matters).
LIVE_MIGRATION_DURATION = 1.0
COLD_MIGRATION_DELAY = 1.0
#: The interpreter of the older Nova's sandbox (a Python 3.10 virtualenv).
OLD_NOVA_PYTHON_ENV = "NMF_TEST_OLD_NOVA_PYTHON"

BootServers = Callable[..., list[dict[str, Any]]]


def connect(
    sandbox: control.SandboxInfo, cloud: str = constants.CLOUD_ADMIN,
) -> openstack.connection.Connection:
    """An openstacksdk connection through the sandbox's clouds.yaml."""
    config = openstack.config.OpenStackConfig(
        config_files=[sandbox.clouds_yaml], vendor_files=[])
    return openstack.connection.Connection(
        config=config.get_one(cloud=cloud))


@pytest.fixture(scope="session")
def sandbox(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[control.SandboxInfo]:
    """The running sandbox (4 computes) of this test session."""
    reused = os.environ.get("NMF_SANDBOX_STATE_DIR")
    if reused:
        yield control.info(reused)
        return
    if importlib.util.find_spec("nova") is None:
        pytest.fail(
            "The functional tests need Nova in this interpreter to run the "
            "sandbox cloud: install the 'sandbox' extra "
            "(pip install 'nova-migrate-flows[sandbox]'), or point "
            "NMF_SANDBOX_STATE_DIR at a running sandbox.", pytrace=False)
    state_dir = tmp_path_factory.mktemp("sandbox")
    info = control.start(
        state_dir, computes=4,
        live_migration_duration=LIVE_MIGRATION_DURATION,
        cold_migration_delay=COLD_MIGRATION_DELAY,
        watch_pid=os.getpid())
    try:
        yield info
    finally:
        control.stop(state_dir)


@pytest.fixture(scope="session")
def old_nova_sandbox(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[control.SandboxInfo]:
    """A sandbox (3 computes) running Nova 26 (Zed) with Python 3.10."""
    python = os.environ.get(OLD_NOVA_PYTHON_ENV)
    if not python:
        pytest.fail(
            f"The tests of an older Nova need {OLD_NOVA_PYTHON_ENV}: the "
            "python of a virtualenv with Nova 26.3.0 (Zed), as "
            "tools/run-tests.sh builds it in .venv-nova-zed (pip install -c "
            "tools/constraints/upper-constraints-zed.txt -r "
            "tools/constraints/nova-zed-requirements.txt, with Python "
            "3.10).", pytrace=False)
    state_dir = tmp_path_factory.mktemp("old-nova-sandbox")
    info = control.start(
        state_dir, computes=3,
        live_migration_duration=LIVE_MIGRATION_DURATION,
        cold_migration_delay=COLD_MIGRATION_DELAY,
        python=python, watch_pid=os.getpid())
    try:
        yield info
    finally:
        control.stop(state_dir)


@pytest.fixture(scope="session")
def sdk(sandbox: control.SandboxInfo) -> openstack.connection.Connection:
    """An admin openstacksdk connection (cloud ``sandbox``)."""
    return connect(sandbox)


@pytest.fixture(scope="session")
def sandbox_client(sandbox: control.SandboxInfo) -> control.SandboxClient:
    """The sandbox's control API."""
    return control.SandboxClient(sandbox.state_dir)


@pytest.fixture
def boot_servers(
    sandbox: control.SandboxInfo, sdk: openstack.connection.Connection,
) -> Iterator[BootServers]:
    """Boot servers for a test (``boot(host, count=1, **options)``); they
    are deleted when the test ends, their migrations aborted first."""
    yield from booting(sandbox, sdk)


def booting(sandbox: control.SandboxInfo,
            sdk: openstack.connection.Connection) -> Iterator[BootServers]:
    """What ``boot_servers`` yields, for any sandbox; then the clean-up."""
    created: list[str] = []

    def boot(host: str, count: int = 1,
             **options: Any) -> list[dict[str, Any]]:
        servers = control.boot(sandbox.state_dir, host, count, **options)
        created.extend(server["id"] for server in servers)
        return servers

    yield boot
    remaining = []
    for server_id in created:
        try:
            server = sdk.compute.get_server(server_id)
        except openstack.exceptions.NotFoundException:
            continue
        if server.status == "MIGRATING":
            for migration in sdk.compute.server_migrations(server):
                sdk.compute.abort_server_migration(migration, server)
        sdk.compute.delete_server(server)
        remaining.append(server)
    for server in remaining:
        sdk.compute.wait_for_delete(server, interval=0.2, wait=60)


@pytest.fixture
def restore_cloud(sdk: Any, sandbox_client: Any) -> Iterator[None]:
    """After each test: every compute service up and enabled again, with
    the sandbox's default capacity and driver behaviour."""
    yield
    hosts = [s.host for s in sdk.compute.services(binary="nova-compute")]
    for host in hosts:
        sandbox_client.start_compute(host)
        sandbox_client.set_host_capacity(
            host, vcpus=constants.DEFAULT_HOST_VCPUS,
            memory_mb=constants.DEFAULT_HOST_RAM_MB,
            disk_gb=constants.DEFAULT_HOST_DISK_GB)
    for service in sdk.compute.services(binary="nova-compute"):
        if service.is_forced_down:
            sdk.compute.update_service_forced_down(service, forced=False)
        if service.status != "enabled":
            sdk.compute.enable_service(service)
