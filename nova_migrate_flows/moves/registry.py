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
"""Finding the kinds of move: the ``nova_migrate_flows.moves`` entry points.

Each entry point is named after its kind and points at a
:class:`~nova_migrate_flows.moves.base.MoveKind` subclass. A kind that fails
to load, or whose name differs from its entry point's, is a loud error:
a misspelt or broken kind must never be a silently missing one.
"""

import functools
from typing import Any

from stevedore import extension

from nova_migrate_flows import exceptions
from nova_migrate_flows.moves import base

NAMESPACE = "nova_migrate_flows.moves"


@functools.cache
def installed() -> dict[str, base.MoveKind]:
    """Every installed kind of move, by name."""

    def broken(manager: Any, entrypoint: Any, exc: BaseException) -> None:
        raise exceptions.PluginError(
            f"move kind {entrypoint.name!r} failed to load "
            f"({entrypoint.value}): {type(exc).__name__}: {exc}",
            entrypoint.name, [],
        )

    manager: extension.ExtensionManager[Any] = extension.ExtensionManager(
        NAMESPACE, invoke_on_load=True, on_load_failure_callback=broken,
    )
    kinds: dict[str, base.MoveKind] = {}
    for ext in manager:
        kind = ext.obj
        if not isinstance(kind, base.MoveKind) or kind.name != ext.name:
            raise exceptions.PluginError(
                f"move kind {ext.name!r} ({ext.entry_point.value}) is not "
                "a MoveKind of that name",
                ext.name, [],
            )
        kinds[ext.name] = kind
    return dict(sorted(kinds.items()))


def get(name: str) -> base.MoveKind:
    """The kind of move called ``name``; PluginError if none is."""
    kinds = installed()
    try:
        return kinds[name]
    except KeyError:
        raise exceptions.PluginError(
            f"no move kind called {name!r}; installed kinds: "
            f"{', '.join(kinds) or 'none'} (see 'nova-migrate-flow "
            "list-tasks')",
            name, list(kinds),
        ) from None
