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
"""Loading task plugins with stevedore, in the configured order.

stevedore silently skips unknown names and plugins that fail to import;
here both are fatal, clear errors that name the plugin and list the
installed ones, since a misspelt check must never be a skipped check.
"""

from collections.abc import Iterable
from typing import Any

from stevedore import extension, named

from nova_migrate_flows import exceptions
from nova_migrate_flows.tasks import base

NAMESPACE = "nova_migrate_flows.tasks"


def installed() -> dict[str, Any]:
    """Every installed task plugin: name -> class, or the load error."""
    found: dict[str, Any] = {}

    def broken(manager: Any, entrypoint: Any, exc: BaseException) -> None:
        found[entrypoint.name] = exc

    manager: extension.ExtensionManager[Any] = extension.ExtensionManager(
        NAMESPACE, on_load_failure_callback=broken
    )
    for ext in manager:
        found[ext.name] = ext.plugin
    return dict(sorted(found.items()))


def load(names: Iterable[str], kind: str, option: str) -> list[
        tuple[str, type[base.BaseTask]]]:
    """The plugins called ``names``, in that order, all of ``kind``.

    ``option`` names the configuration option that listed them, for the
    error message. Raises PluginError for an unknown, broken, repeated or
    wrong-kind plugin.
    """
    wanted = [name.strip() for name in names if name.strip()]
    seen: set[str] = set()
    for name in wanted:
        if name in seen:
            raise exceptions.PluginError(
                f"{option}: task plugin {name!r} is listed twice",
                name, list(installed()),
            )
        seen.add(name)

    def missing(names_missing: Iterable[str]) -> None:
        name = sorted(names_missing)[0]
        known = _names_of_kind(kind)
        raise exceptions.PluginError(
            f"{option}: no task plugin called {name!r}; installed {kind} "
            f"plugins: {', '.join(known) or 'none'} (see 'nova-migrate-flow "
            "list-tasks')",
            name, known,
        )

    def broken(manager: Any, entrypoint: Any, exc: BaseException) -> None:
        raise exceptions.PluginError(
            f"{option}: task plugin {entrypoint.name!r} failed to load "
            f"({entrypoint.value}): {type(exc).__name__}: {exc}",
            entrypoint.name, list(installed()),
        )

    manager: named.NamedExtensionManager[Any] = named.NamedExtensionManager(
        NAMESPACE,
        wanted,
        name_order=True,
        on_missing_entrypoints_callback=missing,
        on_load_failure_callback=broken,
    )
    loaded = [(ext.name, ext.plugin) for ext in manager]
    for name, plugin in loaded:
        if getattr(plugin, "kind", None) != kind:
            raise exceptions.PluginError(
                f"{option}: task plugin {name!r} is a "
                f"{getattr(plugin, 'kind', 'foreign')} task, not a {kind} "
                "task",
                name, _names_of_kind(kind),
            )
    return loaded


def _names_of_kind(kind: str) -> list[str]:
    return [
        name for name, plugin in installed().items()
        if getattr(plugin, "kind", None) == kind
    ]
