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
"""Flow factories by name: the ``nova_migrate_flows.flows`` entry points.

Each operation's flow factory is registered under the operation's name
(``live-migrate``, ``resize``, ``move``, ``host-evacuate-live``,
``host-servers-migrate``, ``host-evacuate``), and the flows every host
operation runs first under ``preflight`` and ``disable-services``. The
runner finds them here; an embedding service may too. ``host-preflight``
and ``host`` are the older names of ``preflight`` and of the host
operations' factory, kept for services that use them. Host maintenance
adds ``host-maintenance-enter`` (a host drain), ``host-maintenance-exit``
(one host brought back), ``return-plan`` (which servers go back) and
``maintenance-hook`` (a roll's hook on one host).
"""

import functools
from collections.abc import Callable
from typing import Any

from stevedore import driver
from stevedore import exception as stevedore_exc

from nova_migrate_flows import exceptions

NAMESPACE = "nova_migrate_flows.flows"
PREFLIGHT = "preflight"
DISABLE_SERVICES = "disable-services"
RETURN_PLAN = "return-plan"
MAINTENANCE_HOOK = "maintenance-hook"


@functools.cache
def factory(name: str) -> Callable[..., Any]:
    """The flow factory registered as ``name``."""

    def broken(manager: Any, entrypoint: Any, exc: BaseException) -> None:
        raise exceptions.PluginError(
            f"flow factory {name!r} ({entrypoint.value}) failed to load: "
            f"{type(exc).__name__}: {exc}",
            name, [],
        )

    try:
        manager: driver.DriverManager[Any] = driver.DriverManager(
            NAMESPACE, name, invoke_on_load=False,
            on_load_failure_callback=broken)
    except stevedore_exc.NoMatches:
        raise exceptions.PluginError(
            f"no flow factory called {name!r} in the {NAMESPACE} entry "
            "points; reinstall nova-migrate-flows",
            name, [],
        ) from None
    plugin: Callable[..., Any] = manager.driver
    return plugin
