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
"""Mistral actions: the operations, for Mistral workflows.

Each action runs its operation to its end with a ConfigOpts of its own
read from the tool's configuration files (never a global one), and records
the run like the command line does, so that ``nova-migrate-flow flows
list`` shows it. By default it runs in the executor, which waits for it
(a synchronous action). With ``detach: true`` it is asynchronous: the
executor starts it in a detached process
(:mod:`nova_migrate_flows.mistral.detached`), or with ``[mistral]
detach_to = jobboard`` posts it as one job for the conductors
(:mod:`nova_migrate_flows.mistral.jobs`), and is free at once; that process
or conductor reports the result to Mistral when the operation ends. Either
way,
when ``[mistral]`` says how to reach Mistral's API, a task timeout or an
execution cancel stops the operation the way SIGINT does (see
:mod:`nova_migrate_flows.mistral.operation`); a detached action needs
``[mistral]``.

The result of a successful run is the command line's JSON output
(:meth:`~nova_migrate_flows.engine.result.RunResult.to_json`: ``run_id``,
``operation``, ``results`` with one entry per server, ``summary``, ...).
Whenever the command line would exit non-zero (a server failed, a host was
not emptied, a dry run's preflight refused a server, the run was
interrupted, bad input or configuration, Nova unreachable) the action
returns an *error* result instead, so the task goes to ERROR and
``on-error`` runs. It holds the same JSON plus ``error``, a one-line
reason, and ``exit_code``, the command line's exit code (2: bad input,
nothing was changed); when an error stopped the whole run, only
``operation``, ``error`` and ``exit_code`` are known and ``results`` is
empty. Unexpected errors are raised, as Mistral expects.
"""

import abc
from typing import Any, ClassVar

from mistral_lib import actions
from oslo_log import log as logging

from nova_migrate_flows import exceptions
from nova_migrate_flows.mistral import client as client_mod
from nova_migrate_flows.mistral import detached, jobs
from nova_migrate_flows.mistral import operation as operation_mod
from nova_migrate_flows.request import Operation

LOG = logging.getLogger(__name__)

#: The strings ``block_migration`` takes besides the booleans.
BLOCK_MIGRATION_MODES = ("auto", "true", "false")



class MoveAction(actions.Action, metaclass=abc.ABCMeta):
    """Runs one operation; subclasses say which and with what input.

    Every attribute is a plain value, so that Mistral can send an action to
    a remote executor.
    """

    _operation: ClassVar[Operation]

    def __init__(self, detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__()
        self.detach = detach
        self.config_file = _as_list(config_file)
        self.config_dir = config_dir

    def is_sync(self) -> bool:
        """A detached action reports its result later, through Mistral's
        API."""
        return not self.detach

    @abc.abstractmethod
    def _given(self) -> dict[str, Any]:
        """The request's settings (see :func:`nova_migrate_flows.api.run`);
        raises InvalidInput for a bad value."""

    def run(self, context: Any) -> actions.Result | None:
        """Run the operation to its end, or start it detached (None: the
        result comes later); see the module's documentation for the
        result."""
        execution = operation_mod.Execution.from_context(context)
        try:
            given = self._given()
            conf = operation_mod.load_conf(self.config_file, self.config_dir)
            if self.detach:
                self._detach(conf, given, execution)
                return None
        except exceptions.NovaMigrateFlowsError as exc:
            return operation_mod.refused(self._operation, exc, execution)
        return operation_mod.execute(conf, self._operation, given,
                                     execution)

    def _detach(self, conf: Any, given: dict[str, Any],
                execution: operation_mod.Execution) -> None:
        if execution.action_execution_id is None:
            raise exceptions.InvalidInput(
                "detach: Mistral gave no action execution to report to")
        client_mod.from_conf(conf)
        if jobs.chosen(conf):
            job = jobs.post(conf, self._operation, given, execution)
            LOG.info("Mistral action execution %s: %s posted as job %s "
                     "(run %s)", execution.action_execution_id,
                     self._operation, job["job_id"], job["run_id"])
            return
        pid = detached.spawn(detached.Spec(
            self._operation.value, given, self.config_file,
            self.config_dir, execution))
        LOG.info("Mistral action execution %s: %s runs detached in "
                 "process %d", execution.action_execution_id,
                 self._operation, pid)


class LiveMigrateAction(MoveAction):
    """Live-migrate one server, checked before and verified after.

    :param server: name or id of the server.
    :param target_host: the host to move it to (default: Nova's scheduler
        chooses).
    :param block_migration: copy the disks too: true, false, or "auto"
        (Nova decides); default: ``[migration] block_migration``.
    :param force: bypass the scheduler's checks of ``target_host``
        (microversion 2.67 and earlier only; unsafe).
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.LIVE_MIGRATE

    def __init__(self, server: str, target_host: str | None = None,
                 block_migration: bool | str | None = None,
                 force: bool = False,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(detach, config_file, config_dir)
        self.server = server
        self.target_host = target_host
        self.block_migration = block_migration
        self.force = force

    def _given(self) -> dict[str, Any]:
        return {
            "servers": [self.server],
            "target_host": self.target_host,
            "block_migration": _block_migration(self.block_migration),
            "force": self.force,
        }


class HostAction(MoveAction):
    """The settings every host operation shares."""

    def __init__(self, hosts: list[str], target_host: str | None,
                 dry_run: bool, enable_after: bool | None,
                 stop_on_failure: bool | None,
                 detach: bool,
                 config_file: str | list[str] | None,
                 config_dir: str | None) -> None:
        super().__init__(detach, config_file, config_dir)
        self.hosts = hosts
        self.target_host = target_host
        self.dry_run = dry_run
        self.enable_after = enable_after
        self.stop_on_failure = stop_on_failure

    def _given(self) -> dict[str, Any]:
        return {
            "hosts": self.hosts,
            "target_host": self.target_host,
            "dry_run": self.dry_run,
            "enable_after": self.enable_after,
            "stop_on_failure": self.stop_on_failure,
        }


class HostEvacuateLiveAction(HostAction):
    """Live-migrate every server off each host, throttled like Nova, each
    verified; each host's compute service is disabled first.

    :param hosts: the source host(s) to empty (a name or a list).
    :param target_host: move every server to this host (default: Nova's
        scheduler, or ``[drain] candidate_hosts``).
    :param block_migration: copy the disks too: true, false, or "auto"
        (Nova decides); default: ``[migration] block_migration``.
    :param max_concurrent: live migrations at once per source host
        (default: ``[drain] max_concurrent_live_migrations``).
    :param dry_run: return the plan and every preflight result (``plan``);
        change nothing.
    :param enable_after: enable each compute service again once its host is
        empty (default: ``[drain] enable_after``).
    :param stop_on_failure: start no other migration after a server failed
        (default: ``[drain] stop_on_failure``).
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.HOST_EVACUATE_LIVE

    def __init__(self, hosts: str | list[str],
                 target_host: str | None = None,
                 block_migration: bool | str | None = None,
                 max_concurrent: int | None = None,
                 dry_run: bool = False,
                 enable_after: bool | None = None,
                 stop_on_failure: bool | None = None,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(_as_list(hosts), target_host, dry_run,
                         enable_after, stop_on_failure, detach,
                         config_file, config_dir)
        self.block_migration = block_migration
        self.max_concurrent = max_concurrent

    def _given(self) -> dict[str, Any]:
        return dict(
            super()._given(),
            block_migration=_block_migration(self.block_migration),
            max_concurrent=self.max_concurrent,
        )


class HostServersMigrateAction(HostAction):
    """Cold-migrate every server off each host, confirm each once verified,
    and keep each one's power state.

    :param hosts: the source host(s) to empty (a name or a list).
    :param target_host: move every server to this host (default: Nova's
        scheduler, or ``[drain] candidate_hosts``).
    :param confirm: confirm each move; false leaves the servers in
        VERIFY_RESIZE.
    :param dry_run: return the plan and every preflight result (``plan``);
        change nothing.
    :param enable_after: enable each compute service again once its host is
        empty (default: ``[drain] enable_after``).
    :param stop_on_failure: start no other migration after a server failed
        (default: ``[drain] stop_on_failure``).
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.HOST_SERVERS_MIGRATE

    def __init__(self, hosts: str | list[str],
                 target_host: str | None = None,
                 confirm: bool = True,
                 dry_run: bool = False,
                 enable_after: bool | None = None,
                 stop_on_failure: bool | None = None,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(_as_list(hosts), target_host, dry_run,
                         enable_after, stop_on_failure, detach,
                         config_file, config_dir)
        self.confirm = confirm

    def _given(self) -> dict[str, Any]:
        return dict(super()._given(), confirm=self.confirm)


class ResizeAction(MoveAction):
    """Resize a server to another flavor, verify it and confirm it (or
    revert it when a verification fails).

    :param server: name or id of the server.
    :param flavor: name or id of the new flavor.
    :param confirm: confirm the resize; false leaves the server in
        VERIFY_RESIZE.
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.RESIZE

    def __init__(self, server: str, flavor: str, confirm: bool = True,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(detach, config_file, config_dir)
        self.server = server
        self.flavor = flavor
        self.confirm = confirm

    def _given(self) -> dict[str, Any]:
        return {"servers": [self.server], "flavor": self.flavor,
                "confirm": self.confirm}


class HostEvacuateAction(HostAction):
    """Rebuild every server of a failed host elsewhere, restart the ones
    that ran, and verify them.

    :param host: the failed host (its compute service must be down).
    :param target_host: rebuild every server on this host (default: Nova's
        scheduler, or ``[drain] candidate_hosts``).
    :param force_down: force the host's compute service down first (only
        when the host is really dead: its servers would run twice
        otherwise).
    :param dry_run: return the plan and every preflight result (``plan``);
        change nothing.
    :param enable_after: enable the compute service again once the host is
        empty (default: ``[drain] enable_after``).
    :param stop_on_failure: start no other evacuation after a server failed
        (default: ``[drain] stop_on_failure``).
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.HOST_EVACUATE

    def __init__(self, host: str, target_host: str | None = None,
                 force_down: bool = False,
                 dry_run: bool = False,
                 enable_after: bool | None = None,
                 stop_on_failure: bool | None = None,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__([host], target_host, dry_run, enable_after,
                         stop_on_failure, detach, config_file, config_dir)
        self.force_down = force_down

    def _given(self) -> dict[str, Any]:
        return dict(super()._given(), force_down=self.force_down)


class MaintenanceEnterAction(MoveAction):
    """Put hosts in maintenance: move every server off each (live for
    ACTIVE and PAUSED, cold for SHUTOFF), each verified, and leave each
    disabled with a marker naming the run and ``reason``. Ends in error
    when a host is not emptied.

    :param hosts: the host(s) (a name or a list).
    :param reason: why (kept in the disabled reason).
    :param max_concurrent: live migrations at once per source host.
    :param dry_run: return the plan; change nothing.
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.MAINTENANCE_ENTER

    def __init__(self, hosts: str | list[str], reason: str | None = None,
                 max_concurrent: int | None = None, dry_run: bool = False,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(detach, config_file, config_dir)
        self.hosts = _as_list(hosts)
        self.reason = reason
        self.max_concurrent = max_concurrent
        self.dry_run = dry_run

    def _given(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "reason": self.reason,
                "max_concurrent": self.max_concurrent,
                "dry_run": self.dry_run}


class MaintenanceExitAction(MoveAction):
    """Bring hosts out of maintenance: enable each compute service an enter
    run disabled, and with ``move_back`` return the servers it moved away.

    :param hosts: the host(s) (a name or a list).
    :param move_back: return the servers, each verified.
    :param dry_run: return the plan; change nothing.
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.MAINTENANCE_EXIT

    def __init__(self, hosts: str | list[str], move_back: bool = False,
                 dry_run: bool = False,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(detach, config_file, config_dir)
        self.hosts = _as_list(hosts)
        self.move_back = move_back
        self.dry_run = dry_run

    def _given(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "move_back": self.move_back,
                "dry_run": self.dry_run}


class MaintenanceRollAction(MoveAction):
    """Maintenance of many hosts, ``batch`` at a time: enter, the hook on
    each host, wait for its compute service, exit; one recorded run.

    :param hosts: the hosts, in the order they go.
    :param batch: hosts in maintenance at once.
    :param hook: the command the ``run-command`` hook task runs per host.
    :param move_back: return each host's servers when it comes back.
    :param wait_up: seconds to wait for a host to be up after its hook.
    :param detach: run asynchronously, in a detached process or as a job
        for the conductors (``[mistral] detach_to``), which reports the
        result to Mistral (needs ``[mistral]``); for long operations.
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.MAINTENANCE_ROLL

    def __init__(self, hosts: list[str], batch: int = 1,
                 hook: str | None = None, move_back: bool = False,
                 wait_up: float | None = None,
                 detach: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(detach, config_file, config_dir)
        self.hosts = _as_list(hosts)
        self.batch = batch
        self.hook = hook
        self.move_back = move_back
        self.wait_up = wait_up

    def _given(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "batch": self.batch, "hook": self.hook,
                "move_back": self.move_back, "wait_up": self.wait_up}


def _as_list(value: str | list[str] | None) -> list[str]:
    """A list from one value, a list, or nothing (a string is one item,
    never its characters)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _block_migration(value: bool | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if value.lower() not in BLOCK_MIGRATION_MODES:
        raise exceptions.InvalidInput(
            f"block_migration {value!r}: must be true, false or "
            f"{BLOCK_MIGRATION_MODES[0]!r}"
        )
    return value.lower()

