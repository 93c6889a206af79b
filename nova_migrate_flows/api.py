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
"""The Python API for services that embed nova-migrate-flows.

A service registers the options on its own ConfigOpts, then runs an
operation and gets a :class:`~nova_migrate_flows.engine.result.RunResult`
back, with one outcome per server (the same fields as the command line's
JSON output)::

    from oslo_config import cfg
    from nova_migrate_flows import api

    conf = cfg.ConfigOpts()
    api.register_opts(conf)
    conf(["--config-file", "/etc/myservice/myservice.conf"])
    result = api.host_evacuate_live(conf, ["compute01"])
    for outcome in result.outcomes:
        print(outcome["server"], outcome["status"], outcome["destination"])

Services that run their own TaskFlow engines use the flow factories
instead (:mod:`nova_migrate_flows.flows.single` and
:mod:`nova_migrate_flows.flows.host`) and inject a
:class:`~nova_migrate_flows.execution.runtime.Runtime` as the transient
``runtime`` store value.
"""

from collections.abc import Callable, Sequence
from typing import Any

from oslo_config import cfg

from nova_migrate_flows import opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.compute import connection
from nova_migrate_flows.engine import maintenance, persistence
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.engine import result as result_mod
from nova_migrate_flows.engine import roll as roll_mod
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.request import Operation

RunResult = result_mod.RunResult


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option of nova-migrate-flows on ``conf``."""
    opts.register_opts(conf)


def run(
    conf: cfg.ConfigOpts,
    operation: Operation | str,
    *,
    compute: compute_base.Compute | None = None,
    record: bool = True,
    on_start: Callable[[runner_mod.Runner | roll_mod.Roll], None]
    | None = None,
    **options: Any,
) -> RunResult:
    """Run one operation to its end.

    :param conf: a ConfigOpts on which :func:`register_opts` was called.
    :param operation: what to do (an :class:`Operation` or its name).
    :param compute: how to reach Nova (default: from ``conf``'s ``[nova]``).
    :param record: record the run in the persistence backend (``[DEFAULT]
        state_dir`` or ``[persistence] connection``), so that it can be
        listed and resumed.
    :param on_start: called with the runner just before the run starts;
        its ``stop(abort_in_flight, reason)`` stops the run the way SIGINT
        stops the command line's (from any thread).
    :param options: the operation's settings, named like the fields of
        :class:`~nova_migrate_flows.request.MoveRequest` (``hosts``,
        ``servers``, ``target_host``, ``block_migration``, ``flavor``,
        ``confirm``, ``max_concurrent``, ``dry_run``, ...); unset ones come
        from ``conf``.
    :raises nova_migrate_flows.exceptions.NovaMigrateFlowsError: for bad
        input (nothing changed), or errors that stop the whole run.
    """
    request = request_mod.build_request(conf, Operation(operation),
                                        **options)
    backend = None
    if record and not request.dry_run:
        backend = persistence.backend_from_conf(conf)
    own = None
    if compute is None:
        compute = own = connection.compute_from_conf(conf)
    try:
        runner = roll_mod.runner_for(conf, compute, backend, request.op)
        if on_start is not None:
            on_start(runner)
        return runner.run(request)
    finally:
        if backend is not None:
            backend.close()
        if own is not None:
            own.close()


def live_migrate(conf: cfg.ConfigOpts, server: str,
                 target_host: str | None = None, **options: Any
                 ) -> RunResult:
    """Live-migrate one server (name or id)."""
    return run(conf, Operation.LIVE_MIGRATE, servers=[server],
               target_host=target_host, **options)


def move(conf: cfg.ConfigOpts, server: str, kind: str,
         target_host: str | None = None, **options: Any) -> RunResult:
    """Move one server (name or id) with the kind of move called ``kind``
    (an entry point of ``nova_migrate_flows.moves``)."""
    return run(conf, Operation.MOVE, servers=[server], kind=kind,
               target_host=target_host, **options)


def host_evacuate_live(conf: cfg.ConfigOpts, hosts: Sequence[str],
                       **options: Any) -> RunResult:
    """Live-migrate every server off each host."""
    return run(conf, Operation.HOST_EVACUATE_LIVE, hosts=list(hosts),
               **options)


def host_servers_migrate(conf: cfg.ConfigOpts, hosts: Sequence[str],
                         **options: Any) -> RunResult:
    """Cold-migrate every server off each host."""
    return run(conf, Operation.HOST_SERVERS_MIGRATE, hosts=list(hosts),
               **options)


def resize(conf: cfg.ConfigOpts, server: str, flavor: str,
           **options: Any) -> RunResult:
    """Resize one server (name or id) to another flavor."""
    return run(conf, Operation.RESIZE, servers=[server], flavor=flavor,
               **options)


def host_evacuate(conf: cfg.ConfigOpts, host: str,
                  **options: Any) -> RunResult:
    """Rebuild every server of a failed host elsewhere."""
    return run(conf, Operation.HOST_EVACUATE, hosts=[host], **options)


def host_maintenance_enter(conf: cfg.ConfigOpts, hosts: Sequence[str],
                           reason: str | None = None,
                           **options: Any) -> RunResult:
    """Empty each host (live, or cold for stopped servers) and leave it
    disabled with a maintenance marker that names the run and ``reason``.
    """
    return run(conf, Operation.MAINTENANCE_ENTER, hosts=list(hosts),
               reason=reason, **options)


def host_maintenance_exit(conf: cfg.ConfigOpts, hosts: Sequence[str],
                          move_back: bool = False,
                          **options: Any) -> RunResult:
    """Bring each host back into service (only if an enter run disabled
    it); with ``move_back``, return the servers that run moved away."""
    return run(conf, Operation.MAINTENANCE_EXIT, hosts=list(hosts),
               move_back=move_back, **options)


def host_maintenance_roll(conf: cfg.ConfigOpts, hosts: Sequence[str],
                          batch: int = 1, hook: str | None = None,
                          move_back: bool = False,
                          **options: Any) -> RunResult:
    """Maintenance of ``hosts``, ``batch`` at a time: enter, the hook task
    on each host, wait for it to be up, exit. Recorded as one run (it
    needs the persistence backend)."""
    return run(conf, Operation.MAINTENANCE_ROLL, hosts=list(hosts),
               batch=batch, hook=hook, move_back=move_back, **options)


def host_maintenance_status(
    conf: cfg.ConfigOpts, hosts: Sequence[str] = (),
    *, compute: compute_base.Compute | None = None,
) -> list[dict[str, Any]]:
    """The hosts in maintenance (or each of ``hosts``): since when, by
    which run, what it moved and where, and whether the service is up
    (the rows of ``host-maintenance status --format json``)."""
    own = None
    if compute is None:
        compute = own = connection.compute_from_conf(conf)
    backend = persistence.backend_from_conf(conf)
    try:
        return maintenance.status(compute.list_services(),
                                  records_mod.Records(backend), hosts)
    finally:
        backend.close()
        if own is not None:
            own.close()
