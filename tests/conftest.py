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
"""Fixtures shared by the unit and functional tests."""

import logging
import os
import pathlib
import subprocess
import sys

import pytest
from stevedore import extension

PLUGIN_SOURCE = pathlib.Path(__file__).parent / "plugins" / "nmf-example-tasks"


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory):
    """The example third-party plugin package, installed for these tests.

    It is installed with pip into a directory of its own, which is put on
    ``sys.path`` (and PYTHONPATH, for commands the tests run), as an
    operator would install a plugin package next to the tool.
    """
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target),
         str(PLUGIN_SOURCE)],
        check=True,
    )
    sys.path.insert(0, str(target))
    # stevedore caches each namespace's entry points for the process.
    extension.ExtensionManager.ENTRY_POINT_CACHE.clear()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(target)] + ([old] if old else [])
    )
    yield target
    sys.path.remove(str(target))
    extension.ExtensionManager.ENTRY_POINT_CACHE.clear()
    if old is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(autouse=True)
def keep_logging_handlers():
    """Put the root logger back as it was: the command line sets logging up
    (oslo.log) on streams that pytest closes after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
