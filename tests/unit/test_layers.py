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
"""The layers of the package: no module imports from a layer above its own.

Read from the bottom: the ground floor (names, statuses, exceptions,
options, the request) imports nothing of the project above it; Nova access
(``compute``) and the sandbox stand on it; ``execution`` (what tasks use at
run time) on them; then move kinds, tasks, flows, ``engine`` (what runs
flows) and, at the top, the ways in: the API, the command line and Mistral.
``doc/source/architecture.rst`` draws the same picture.
"""

import ast
import pathlib

import pytest

import nova_migrate_flows

PACKAGE = "nova_migrate_flows"

#: Bottom first. A module may import from its own layer and those below.
LAYERS: list[set[str]] = [
    {"__init__", "constants", "exceptions"},
    {"opts", "request"},
    {"compute", "sandbox"},
    {"execution"},
    {"moves"},
    {"tasks"},
    {"flows"},
    {"engine"},
    {"api"},
    {"cli", "mistral"},
]

ROOT = pathlib.Path(nova_migrate_flows.__file__).parent


def layer_of(part: str) -> int:
    for index, parts in enumerate(LAYERS):
        if part in parts:
            return index
    raise AssertionError(f"{PACKAGE}.{part} is in no layer: add it to LAYERS")


def top_part(module: str) -> str:
    """``nova_migrate_flows.tasks.live`` -> ``tasks``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: pathlib.Path) -> list[tuple[int, str]]:
    """The project modules a file imports, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0 and node.module.split(".")[0] == PACKAGE:
            if node.module == PACKAGE:
                found += [(node.lineno, f"{PACKAGE}.{alias.name}")
                          for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name.split(".")[0] == PACKAGE]
    return found


def upward_imports(root: pathlib.Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        own = relative.parts[0].removesuffix(".py")
        for line, module in imports_of(path):
            if layer_of(top_part(module)) > layer_of(own):
                found.append(f"{relative}:{line} imports {module}")
    return found


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports(ROOT) == []


def test_an_upward_import_is_found(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "bad.py").write_text(
        "from nova_migrate_flows.engine import runner\n"
        "from nova_migrate_flows import api\n"
        "from nova_migrate_flows.compute import models\n")

    assert upward_imports(tmp_path) == [
        "tasks/bad.py:1 imports nova_migrate_flows.engine",
        "tasks/bad.py:2 imports nova_migrate_flows.api",
    ]


@pytest.mark.parametrize("part", sorted(
    path.name.removesuffix(".py") for path in ROOT.iterdir()
    if path.suffix == ".py" or (path / "__init__.py").exists()))
def test_every_package_has_a_layer(part):
    layer_of(part)
