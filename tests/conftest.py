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

from nova_migrate_flows.flows import building
from nova_migrate_flows.moves import registry

ROOT = pathlib.Path(__file__).parent.parent
PLUGIN_SOURCE = ROOT / "tests" / "plugins" / "nmf-example-tasks"
#: The out-of-tree kind of move of the documentation's guide.
MOVE_KIND_SOURCE = ROOT / "doc" / "source" / "examples" / "nmf-acme-moves"


def _forget_entry_points() -> None:
    """stevedore caches each namespace's entry points for the process, and
    the project caches the kinds of move it loaded."""
    extension.ExtensionManager.ENTRY_POINT_CACHE.clear()
    registry.installed.cache_clear()
    building.kind_tasks.cache_clear()


def _installed(source: pathlib.Path,
               tmp_path_factory: pytest.TempPathFactory):
    """Install a plugin package with pip into a directory of its own, put
    on ``sys.path`` (and PYTHONPATH, for commands the tests run), as an
    operator would install a plugin package next to the tool."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(source)],
        check=True,
    )
    sys.path.insert(0, str(target))
    _forget_entry_points()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(target)] + ([old] if old else [])
    )
    yield target
    sys.path.remove(str(target))
    _forget_entry_points()
    if old is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory):
    """The example third-party task plugin package, installed for these
    tests."""
    yield from _installed(PLUGIN_SOURCE, tmp_path_factory)


@pytest.fixture(scope="module")
def example_move_kind(tmp_path_factory):
    """The documentation's example package ``nmf-acme-moves`` (a kind of
    move: shelve-offload, then unshelve onto another host), installed for
    the tests of one module: the others see only this project's kinds."""
    yield from _installed(MOVE_KIND_SOURCE, tmp_path_factory)


@pytest.fixture(autouse=True)
def keep_logging_handlers():
    """Put the root logger back as it was: the command line sets logging up
    (oslo.log) on streams that pytest closes after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
