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
"""Asynchronous actions as jobs for the conductors (``[mistral] detach_to
= jobboard``, or ``auto`` with ``[jobboard]`` configured).

The executor records the action as a run of its own, the *job's run*,
whose one step is the operation's run (its id chosen now, before anything
runs), and posts it as ONE job, the way ``submit host-maintenance roll``
posts a roll (:mod:`nova_migrate_flows.engine.roll`). The conductor that
claims the job runs :class:`MistralJob`: it runs the operation's run under
that id, watched as a detached process watches it (a task timeout or an
execution cancel stops it the way SIGINT does), records the action's
result in the job's run, then reports it to the action execution (``PUT
/v2/action_executions/{id}``). A conductor that takes the job over after
the first one died runs the task again: it resumes the operation's run
when it was started, starts it otherwise, and only reports a result that
was recorded already. The job's run stays ``posted`` until it ends
``finished`` (``resume`` refuses it: the operation's run is the one to
resume).
"""

import dataclasses
import functools
import uuid
from collections.abc import Callable
from typing import Any

from mistral_lib import actions
from oslo_config import cfg
from oslo_log import log as logging
from taskflow.patterns import linear_flow

from nova_migrate_flows import constants, exceptions, opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.engine import jobboard, launching, persistence
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.engine import result as result_mod
from nova_migrate_flows.engine import roll as roll_mod
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.mistral import client as client_mod
from nova_migrate_flows.mistral import detached
from nova_migrate_flows.mistral import operation as operation_mod
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)

#: The name of the flow (and job) of an action posted to the jobboard.
JOB = "mistral-action"

#: The job's run's one step: the operation's run.
STEP = "run"


def chosen(conf: cfg.ConfigOpts) -> bool:
    """Whether an action with ``detach: true`` goes to the jobboard:
    ``[mistral] detach_to``, where ``auto`` means "when the configuration
    sets any ``[jobboard]`` option"."""
    where = conf[opts.MISTRAL_GROUP].detach_to
    if where != "auto":
        return bool(where == "jobboard")
    for opt in opts.jobboard_opts:
        # No location at all: an option without a default, never set.
        where_set = conf.get_location(opt.dest, "jobboard")
        if where_set is not None and \
                where_set.location is not cfg.Locations.opt_default:
            return True
    return False


def post(conf: cfg.ConfigOpts, operation: Operation, given: dict[str, Any],
         execution: operation_mod.Execution) -> dict[str, Any]:
    """Record the action's job's run and post it as one job; the job (its
    id, name and flow) and ``run_id``, the id of the operation's run.

    :raises nova_migrate_flows.exceptions.NovaMigrateFlowsError: bad input,
        or the persistence backend or the jobboard is not usable.
    """
    request = request_mod.build_request(conf, operation, **given)
    backend = persistence.backend_from_conf(conf)
    try:
        records = records_mod.Records(backend)
        job_run = str(uuid.uuid4())
        run_id = str(uuid.uuid4())
        book = records.create(job_run, request.to_dict())
        records.update(book, state=constants.RunState.POSTED,
                       mistral=dataclasses.asdict(execution),
                       steps={STEP: {"run_id": run_id}})
        with jobboard.connected(conf, backend) as board:
            job = launching.Launcher(
                backend=backend, book=book, executor=None, runtime=None,
                store={constants.REQUEST: request.to_dict(),
                       "run_id": job_run},
                board=board,
            ).post(launching.FlowSpec(JOB, job_flow, {}, {}))
        records.update(book, jobs=[job])
    finally:
        backend.close()
    return dict(job, run_id=run_id)


def job_flow() -> linear_flow.Flow:
    """The flow of an action posted to the jobboard: one task that runs
    the operation in the conductor and reports its result."""
    flow = linear_flow.Flow(JOB)
    flow.add(MistralJob())
    return flow


class MistralJob(base.BaseTask):
    """Runs the operation of an asynchronous Mistral action in the
    conductor that claimed its job, and reports its result to Mistral; a
    conductor that takes the job over runs it again, which resumes the
    operation's run.

    Reversion strategy: N/A (the operation's run leaves the cloud
    consistent on its own and its record says where it stopped).
    """

    def __init__(self, **kwargs: Any):
        super().__init__(name=JOB, **kwargs)

    def execute(self, runtime: runtime_mod.Runtime, run_id: str) -> str:
        backend = persistence.backend_from_conf(runtime.conf)
        try:
            return run_job(runtime.conf, runtime.compute, backend, run_id)
        finally:
            backend.close()


def run_job(conf: cfg.ConfigOpts, compute: compute_base.Compute,
            backend: Any, run_id: str) -> str:
    """Run (or resume) the operation of the job's run ``run_id``, record
    the action's result, then report it; the state reported (``SUCCESS``
    or ``ERROR``).

    :raises nova_migrate_flows.exceptions.ConfigurationError: ``[mistral]``
        is not usable: nothing could be reported.
    """
    records = records_mod.Records(backend)
    book = records.get(run_id)
    execution = operation_mod.Execution(**book.meta["mistral"])
    assert execution.action_execution_id is not None
    client = client_mod.from_conf(conf)
    group = conf[opts.MISTRAL_GROUP]
    steps: dict[str, Any] = book.meta["steps"]
    step = steps[STEP]
    if step.get("result") is None:
        request = request_mod.MoveRequest.from_dict(book.meta["request"])
        watch = operation_mod.Watch(client, execution, group.poll_interval,
                                    conf.drain.interrupt_action == "abort")
        # Mistral stopped waiting while no conductor ran the job: nothing
        # new starts.
        ended = watch.ended()
        if ended is not None:
            watch.interrupt(ended)
        done = operation_mod.watched(
            request.op, execution, watch,
            functools.partial(run_or_resume, conf, compute, backend,
                              request, step["run_id"]))
        step["result"] = {"data": done.data, "error": done.error}
        records.update(book, steps=steps)
    result = actions.Result(**step["result"])
    reported = detached.report(client, execution.action_execution_id,
                               result, group.report_timeout,
                               group.poll_interval)
    output = result.data if result.is_success() else result.error
    records.update(book, state=constants.RunState.FINISHED,
                   summary=(output or {}).get("summary"), reported=reported)
    return "SUCCESS" if result.is_success() else "ERROR"


def run_or_resume(
    conf: cfg.ConfigOpts, compute: compute_base.Compute, backend: Any,
    request: request_mod.MoveRequest, run_id: str,
    on_start: Callable[[runner_mod.Runner | roll_mod.Roll], None] | None,
) -> result_mod.RunResult:
    """Run ``request`` as run ``run_id``, or resume that run if it was
    recorded (one that finished only reads back what it did)."""
    runner = roll_mod.runner_for(conf, compute, backend, request.op)
    if on_start is not None:
        on_start(runner)
    try:
        records_mod.Records(backend).get(run_id)
    except exceptions.InvalidInput:
        return runner.run(request, run_id=run_id)
    LOG.info("Run %s was started by a conductor that died: resuming it",
             run_id)
    return runner.resume(run_id, finished_too=True)
