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

Each action runs its operation to its end in the executor's process, with a
ConfigOpts of its own read from the tool's configuration files (never a
global one), and records the run like the command line does, so that
``nova-migrate-flow flows list`` shows it. A workflow uses them like this::

    ---
    version: '2.0'
    drain_host:
      input: [host]
      tasks:
        evacuate:
          action: nova_migrate_flows.host_evacuate_live
          input:
            hosts: <% $.host %>
            config_file: /etc/nova-migrate-flows/nova-migrate-flows.conf
          publish:
            moved: <% task().result.results %>
          publish-on-error:
            failed: <% task().result.results.where($.status = 'failed') %>

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
import json
from collections.abc import Sequence
from typing import Any, ClassVar

from mistral_lib import actions
from oslo_config import cfg
from oslo_log import log as logging

from nova_migrate_flows import api, constants, exceptions, opts
from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.request import Operation

LOG = logging.getLogger(__name__)

#: The strings ``block_migration`` takes besides the booleans.
BLOCK_MIGRATION_MODES = ("auto", "true", "false")


def load_conf(config_file: Sequence[str],
              config_dir: str | None) -> cfg.ConfigOpts:
    """A new ConfigOpts with the tool's options, read like the command line
    reads them (the default locations apply when no file is given).

    :raises nova_migrate_flows.exceptions.ConfigurationError: a file or
        directory is missing or unreadable, or an option has a bad value.
    """
    conf = cfg.ConfigOpts()
    api.register_opts(conf)
    args = [arg for path in config_file for arg in ("--config-file", path)]
    if config_dir:
        args += ["--config-dir", config_dir]
    try:
        conf(args, project=opts.PROJECT, prog="nova-migrate-flow")
    except (cfg.Error, ValueError) as exc:
        raise exceptions.ConfigurationError(
            f"configuration: {exc}"
        ) from None
    opts.validate(conf)
    return conf


class MoveAction(actions.Action, metaclass=abc.ABCMeta):
    """Runs one operation; subclasses say which and with what input.

    Every attribute is a plain value, so that Mistral can send an action to
    a remote executor.
    """

    _operation: ClassVar[Operation]

    def __init__(self, config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__()
        self.config_file = _as_list(config_file)
        self.config_dir = config_dir

    @abc.abstractmethod
    def _given(self) -> dict[str, Any]:
        """The request's settings (see :func:`nova_migrate_flows.api.run`);
        raises InvalidInput for a bad value."""

    def run(self, context: Any) -> actions.Result:
        """Run the operation to its end; see the module's documentation for
        the result."""
        try:
            conf = load_conf(self.config_file, self.config_dir)
            result = api.run(conf, self._operation, **self._given())
        except exceptions.NovaMigrateFlowsError as exc:
            LOG.warning("Mistral action execution %s: %s refused or "
                        "stopped: %s", _execution_id(context),
                        self._operation, exc)
            return actions.Result(error={
                "operation": self._operation.value,
                "results": [],
                "error": str(exc),
                "exit_code": int(exc.exit_code),
            })
        # Exactly what the command line prints (and Mistral stores JSON).
        data = json.loads(json.dumps(result.to_json(), default=str))
        LOG.info("Mistral action execution %s: run %s of %s ended: %s",
                 _execution_id(context), result.run_id, self._operation,
                 data["summary"])
        if result.exit_code == ExitCode.OK:
            return actions.Result(data=data)
        data.update(error=_failure(result), exit_code=int(result.exit_code))
        return actions.Result(error=data)


class LiveMigrateAction(MoveAction):
    """Live-migrate one server, checked before and verified after.

    :param server: name or id of the server.
    :param target_host: the host to move it to (default: Nova's scheduler
        chooses).
    :param block_migration: copy the disks too: true, false, or "auto"
        (Nova decides); default: ``[migration] block_migration``.
    :param force: bypass the scheduler's checks of ``target_host``
        (microversion 2.67 and earlier only; unsafe).
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.LIVE_MIGRATE

    def __init__(self, server: str, target_host: str | None = None,
                 block_migration: bool | str | None = None,
                 force: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(config_file, config_dir)
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
                 config_file: str | list[str] | None,
                 config_dir: str | None) -> None:
        super().__init__(config_file, config_dir)
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
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(_as_list(hosts), target_host, dry_run,
                         enable_after, stop_on_failure, config_file,
                         config_dir)
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
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(_as_list(hosts), target_host, dry_run,
                         enable_after, stop_on_failure, config_file,
                         config_dir)
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
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.RESIZE

    def __init__(self, server: str, flavor: str, confirm: bool = True,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(config_file, config_dir)
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
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.HOST_EVACUATE

    def __init__(self, host: str, target_host: str | None = None,
                 force_down: bool = False,
                 dry_run: bool = False,
                 enable_after: bool | None = None,
                 stop_on_failure: bool | None = None,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__([host], target_host, dry_run, enable_after,
                         stop_on_failure, config_file, config_dir)
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
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.MAINTENANCE_ENTER

    def __init__(self, hosts: str | list[str], reason: str | None = None,
                 max_concurrent: int | None = None, dry_run: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(config_file, config_dir)
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
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.MAINTENANCE_EXIT

    def __init__(self, hosts: str | list[str], move_back: bool = False,
                 dry_run: bool = False,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(config_file, config_dir)
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
    :param config_file: the tool's configuration file(s), read in order.
    :param config_dir: a directory of ``*.conf`` files, read after them.
    """

    _operation = Operation.MAINTENANCE_ROLL

    def __init__(self, hosts: list[str], batch: int = 1,
                 hook: str | None = None, move_back: bool = False,
                 wait_up: float | None = None,
                 config_file: str | list[str] | None = None,
                 config_dir: str | None = None) -> None:
        super().__init__(config_file, config_dir)
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


def _failure(result: api.RunResult) -> str:
    """Why a run that ended counts as failed, in one line."""
    if result.interrupted:
        return "the run was interrupted"
    if result.dry_run:
        return "the preflight refused some servers; nothing was changed"
    reason = (f"{result.count(constants.ServerStatus.FAILED)} of "
              f"{len(result.outcomes)} server(s) failed")
    left = [h["host"] for h in result.hosts if not h.get("empty", True)]
    if left and result.operation == Operation.MAINTENANCE_ROLL:
        reason += "; not done: " + ", ".join(left)
    elif left:
        reason += "; not emptied: " + ", ".join(left)
    back = [h["host"] for h in result.hosts if h.get("done") is False
            and result.operation == Operation.MAINTENANCE_EXIT]
    if back:
        reason += "; not brought back: " + ", ".join(back)
    return reason


def _execution_id(context: Any) -> str | None:
    """The id of this action's execution in Mistral, for the logs."""
    execution = getattr(context, "execution", None)
    return getattr(execution, "action_execution_id", None)
