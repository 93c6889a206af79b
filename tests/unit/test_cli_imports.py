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
"""What the command line imports: only what a command uses, never eventlet.

Each case runs in a fresh interpreter: this one has imported everything
already.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

import nova_migrate_flows

ROOT = pathlib.Path(nova_migrate_flows.__file__).parent.parent
#: What only the commands that run flows or talk to Nova need.
HEAVY = ("eventlet", "taskflow", "openstack", "sqlalchemy", "alembic",
         "networkx")


def loaded_after(code: str) -> set[str]:
    """The top-level packages loaded (not blocked) once ``code`` ran in a
    fresh interpreter."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        "print(json.dumps(sorted({name.split('.')[0] for name, module in "
        "sys.modules.items() if module is not None})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True,
        check=True, timeout=120, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_command_line_loads_nothing_heavy():
    loaded = loaded_after("import nova_migrate_flows.cli.main")

    assert "nova_migrate_flows" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_help_loads_nothing_heavy():
    loaded = loaded_after(
        "import contextlib, io\n"
        "from nova_migrate_flows.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main.main(['--help'])\n"
    )

    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.skipif(importlib.util.find_spec("eventlet") is None,
                    reason="eventlet is not installed: nothing to avoid")
def test_a_command_that_runs_taskflow_never_imports_eventlet():
    # TaskFlow, futurist and oslo.utils import eventlet when it is
    # installed; the console script blocks it before they are imported.
    loaded = loaded_after(
        "import contextlib, io, sys\n"
        "sys.argv = ['nova-migrate-flow', 'list-tasks']\n"
        "from nova_migrate_flows.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), \\\n"
        "        contextlib.suppress(SystemExit):\n"
        "    main.console()\n"
    )

    assert "taskflow" in loaded
    assert "eventlet" not in loaded


def test_the_console_script_leaves_its_objects_to_the_system_at_exit():
    # The collector skips what is frozen: the interpreter's exit does not
    # tear down the objects a run built one by one.
    done = subprocess.run(
        [sys.executable, "-c",
         "import atexit, gc, sys\n"
         "atexit.register(lambda: print('frozen', gc.get_freeze_count()))\n"
         "sys.argv = ['nova-migrate-flow', 'list-tasks']\n"
         "from nova_migrate_flows.cli import main\n"
         "main.console()\n"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )

    assert done.returncode == 0, done.stderr
    frozen = int(done.stdout.strip().splitlines()[-1].split()[1])
    assert frozen > 10000
