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
"""Fixtures of the operation tests: the command line against the shared
sandbox, and a cloud put back as it was after each test."""

from typing import Any

import pytest

from tests import external
from tests.functional.operations import cli


class Nmf:
    """``nova-migrate-flow`` configured for the sandbox and this test."""

    def __init__(self, capsys: Any, sandbox_config: str, tmp_path: Any):
        self._capsys = capsys
        self._sandbox_config = sandbox_config
        self._tmp_path = tmp_path
        self.config = cli.write_config(tmp_path)

    def __call__(self, *argv: str) -> cli.Ran:
        return cli.run_cli(self._capsys, self._sandbox_config, self.config,
                           *argv)

    def write(self, text: str) -> str:
        """A configuration file of this test with ``text`` added; it keeps
        the test's state directory."""
        count = len(list(self._tmp_path.iterdir()))
        directory = self._tmp_path / f"conf{count}"
        directory.mkdir()
        path = directory / "test.conf"
        path.write_text(
            f"[DEFAULT]\nstate_dir = {self._tmp_path / 'state'}\n"
            "[migration]\npoll_interval = 0.5\npoll_interval_min = 0.1\n"
            + text
        )
        return str(path)

    def with_config(self, config: str, *argv: str) -> cli.Ran:
        """Run with the configuration file ``config``."""
        return cli.run_cli(self._capsys, self._sandbox_config, config, *argv)

    def configured(self, text: str, *argv: str) -> cli.Ran:
        """Run with ``text`` added to the test's configuration."""
        return self.with_config(self.write(text), *argv)


@pytest.fixture
def nmf(capsys: Any, sandbox: Any, tmp_path: Any) -> Nmf:
    return Nmf(capsys, sandbox.config_file, tmp_path)


@pytest.fixture(autouse=True)
def _restore_cloud(restore_cloud: None) -> None:
    """Every operation test leaves the cloud as the next one expects."""


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
])
def persistence_config(request):
    """Configuration text for the run's persistence backend."""
    if request.param == "sqlite":
        return ""
    url = external.address("postgresql")
    return f"[persistence]\nconnection = {url}\n"
