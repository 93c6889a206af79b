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
"""One operation run for Mistral, in the executor or in a detached
process: the result it gives Mistral, and the watch that stops it the way
SIGINT does once Mistral no longer waits for it (the task timed out, the
execution was cancelled)."""

import dataclasses
import functools
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from keystoneauth1 import exceptions as ks_exc
from mistral_lib import actions
from oslo_config import cfg
from oslo_log import log as logging

from nova_migrate_flows import api, constants, exceptions, opts
from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.mistral import client as client_mod
from nova_migrate_flows.request import Operation

LOG = logging.getLogger(__name__)


class Stoppable(Protocol):
    def stop(self, abort_in_flight: bool, reason: str = ...) -> None: ...


@dataclasses.dataclass(frozen=True)
class Execution:
    """Where an action runs in Mistral (from its context; a direct
    ``run-action`` has no task nor workflow execution)."""

    action_execution_id: str | None = None
    task_execution_id: str | None = None
    workflow_execution_id: str | None = None

    @classmethod
    def from_context(cls, context: Any) -> "Execution":
        execution = getattr(context, "execution", None)
        return cls(*(getattr(execution, field.name, None)
                     for field in dataclasses.fields(cls)))


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


class Watch:
    """Looks at the action's executions in Mistral every ``interval``
    seconds while the operation runs; once one has ended, or
    :meth:`interrupt` was called, it stops the operation."""

    def __init__(self, client: client_mod.MistralClient,
                 execution: Execution, interval: float,
                 abort_in_flight: bool) -> None:
        self._client = client
        self._execution = execution
        self._interval = interval
        self._abort = abort_in_flight
        self._done = threading.Event()
        # Re-entrant: interrupt() runs in signal handlers too.
        self._lock = threading.RLock()
        self._runner: Stoppable | None = None
        self._reason: str | None = None
        self._thread = threading.Thread(
            target=self._loop, daemon=True,
            name=f"mistral-watch-{execution.action_execution_id}")

    def start(self, runner: Stoppable) -> None:
        """Watch on behalf of ``runner`` (about to run)."""
        with self._lock:
            self._runner = runner
            reason = self._reason
        if reason is not None:
            runner.stop(self._abort, reason)
        else:
            self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def interrupt(self, reason: str) -> None:
        """Stop the operation (once; a signal, Mistral's end)."""
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
            runner = self._runner
        LOG.warning("Mistral action execution %s: %s; stopping the run",
                    self._execution.action_execution_id, reason)
        self._done.set()
        if runner is not None:
            runner.stop(self._abort, reason)

    def ended(self) -> str | None:
        """Why Mistral no longer waits for the result, or None."""
        execution = self._execution
        for kind, get, execution_id in (
            ("action execution", self._client.action_execution,
             execution.action_execution_id),
            ("task", self._client.task_execution,
             execution.task_execution_id),
            ("workflow execution", self._client.workflow_execution,
             execution.workflow_execution_id),
        ):
            if execution_id is None:
                continue
            try:
                state = get(execution_id).get("state")
            except ks_exc.ClientException as exc:
                LOG.warning("Mistral: cannot read %s %s: %s", kind,
                            execution_id, exc)
                return None
            if state in client_mod.FINISHED_STATES:
                return (f"interrupted by Mistral: {kind} {execution_id} is "
                        f"{state}")
        return None

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            reason = self.ended()
            if reason is not None:
                self.interrupt(reason)


def watch_from_conf(conf: cfg.ConfigOpts,
                    execution: Execution) -> Watch | None:
    """The watch of an action, when ``[mistral]`` is configured and Mistral
    gave the action an execution id (None otherwise).

    :raises nova_migrate_flows.exceptions.ConfigurationError: ``[mistral]``
        is configured but not usable.
    """
    if (execution.action_execution_id is None
            or not client_mod.configured(conf)):
        return None
    return Watch(client_mod.from_conf(conf), execution,
                 conf[opts.MISTRAL_GROUP].poll_interval,
                 conf.drain.interrupt_action == "abort")


def execute(conf: cfg.ConfigOpts, operation: Operation,
            given: dict[str, Any], execution: Execution,
            watch: Watch | None = None) -> actions.Result:
    """Run the operation to its end, stopped by ``watch`` (default: the
    one ``conf`` gives) once Mistral stops waiting; the action's result."""
    try:
        watch = watch or watch_from_conf(conf, execution)
    except exceptions.NovaMigrateFlowsError as exc:
        return refused(operation, exc, execution)
    return watched(operation, execution, watch, functools.partial(
        api.run, conf, operation, **given))


def watched(operation: Operation, execution: Execution, watch: Watch | None,
            run: Callable[..., api.RunResult]) -> actions.Result:
    """``run(on_start=...)``, a run of ``operation`` that calls
    ``on_start`` with its runner, stopped by ``watch`` once Mistral stops
    waiting; the action's result."""
    try:
        try:
            result = run(on_start=watch.start if watch else None)
        finally:
            if watch is not None:
                watch.close()
    except exceptions.NovaMigrateFlowsError as exc:
        return refused(operation, exc, execution)
    # Exactly what the command line prints (and Mistral stores JSON).
    data = json.loads(json.dumps(result.to_json(), default=str))
    LOG.info("Mistral action execution %s: run %s of %s ended: %s",
             execution.action_execution_id, result.run_id, operation,
             data["summary"])
    if result.exit_code == ExitCode.OK:
        return actions.Result(data=data)
    data.update(error=failure(result), exit_code=int(result.exit_code))
    return actions.Result(error=data)


def refused(operation: Operation, exc: exceptions.NovaMigrateFlowsError,
            execution: Execution) -> actions.Result:
    """The error result of an operation refused or stopped as a whole."""
    LOG.warning("Mistral action execution %s: %s refused or stopped: %s",
                execution.action_execution_id, operation, exc)
    return actions.Result(error={
        "operation": operation.value,
        "results": [],
        "error": str(exc),
        "exit_code": int(exc.exit_code),
    })


def failure(result: api.RunResult) -> str:
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
