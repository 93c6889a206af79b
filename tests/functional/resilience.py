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
"""Helpers of the resilience tests (faults, tokens, secrets): the command
line run in this process against the sandbox, through a fault proxy when
one is given, and the cloud put back afterwards."""

import pathlib
from typing import Any

import openstack

from nova_migrate_flows.sandbox import control
from tests.functional import faultproxy
from tests.functional.operations import cli


class Tool:
    """``nova-migrate-flow`` for one test: its own state directory, and
    the sandbox reached through ``proxy`` when one is given (with the
    clouds.yaml ``settings`` added to every cloud)."""

    def __init__(
        self,
        capsys: Any,
        sandbox: control.SandboxInfo,
        directory: pathlib.Path,
        proxy: faultproxy.FaultProxy | None = None,
        cloud: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._capsys = capsys
        self._sandbox = sandbox
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.state_dir = directory / "state"
        self.clouds_yaml = sandbox.clouds_yaml
        if proxy is not None:
            self.clouds_yaml = proxy.clouds_yaml(
                sandbox.clouds_yaml, str(directory / "clouds.yaml"),
                settings)
        self.cloud = cloud
        self._configs = 0

    def config(self, text: str = "") -> str:
        """A configuration file: the test's state directory and clouds,
        fast polling, and ``text``."""
        self._configs += 1
        path = self.directory / f"test{self._configs}.conf"
        nova = f"clouds_yaml = {self.clouds_yaml}\n"
        if self.cloud:
            nova += f"cloud = {self.cloud}\n"
        path.write_text(
            f"[DEFAULT]\nstate_dir = {self.state_dir}\n[nova]\n{nova}"
            "[migration]\npoll_interval = 0.5\npoll_interval_min = 0.1\n"
            + text)
        return str(path)

    def __call__(self, *argv: str, config: str = "") -> cli.Ran:
        """Run the command line with ``config`` added to the test's
        configuration."""
        return cli.run_cli(self._capsys, self._sandbox.config_file,
                           self.config(config), *argv)


def restore_services(sdk: openstack.connection.Connection,
                     client: control.SandboxClient) -> None:
    """Every compute service running, up and enabled, as the tests
    expect it (enabled once up: Nova tells a running compute to drop the
    disabled trait from its resource provider)."""
    for service in sdk.compute.services(binary="nova-compute"):
        if client.start_compute(service.host):
            cli.wait_until(lambda host=service.host: next(iter(
                sdk.compute.services(binary="nova-compute", host=host)
            )).state == "up", timeout=60)
        if service.is_forced_down:
            sdk.compute.update_service_forced_down(service, forced=False)
        if service.status != "enabled":
            sdk.compute.enable_service(service)
