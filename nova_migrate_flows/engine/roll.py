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
"""``host-maintenance roll``: maintenance of many hosts, batch after batch,
recorded as one run.

For each batch of hosts, in order: an ``enter`` run empties them; the hook
task (``[maintenance] hook_task``) runs once per host; the roll waits for
each host's compute service to be up; an ``exit`` run brings them back
(moving their servers back with ``--move-back``). The roll's record holds
its steps: the id of each ``enter``/``exit`` run (recorded before the run
starts, so a resume resumes that run instead of starting another) and its
result once it ended, and the flow of each hook (a hook that ended is not
run again; one a crash interrupted is). A host that fails to empty stops
the roll before its hook; a failed hook, a host that does not come up, or
an exit that fails stops it with the host in maintenance.
"""

import concurrent.futures
import dataclasses
import threading
import time
import uuid
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from taskflow.patterns import linear_flow

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.engine import launching, persistence
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.engine import result as result_mod
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.flows import maintenance as maintenance_flows
from nova_migrate_flows.flows import registry as flow_registry
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)

#: The name of the flow (and job) of a roll posted with ``submit``.
ROLL_JOB = "host-maintenance-roll"

#: Seconds between two reads of the compute services while waiting for a
#: host to come up.
UP_POLL_INTERVAL = 2.0


@dataclasses.dataclass
class _Host:
    """How far one host of the roll got."""

    host: str
    batch: int
    step: str = "pending"
    done: bool = False
    reason: str = ""
    enter_run: str | None = None
    exit_run: str | None = None
    moved_away: int = 0
    moved_back: int = 0

    def to_dict(self) -> dict[str, Any]:
        # ``empty`` keeps RunResult's rule: a host not done fails the run.
        return dict(dataclasses.asdict(self), empty=self.done)


class _Stopped(Exception):
    """The roll stops here (the reason is in the hosts' rows)."""


class Roll:
    """Runs and resumes ``host-maintenance roll`` runs."""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        compute: compute_base.Compute,
        *,
        backend: Any,
        live_progress: bool = False,
        subscribers: list[runtime_mod.Listener] | None = None,
    ):
        if backend is None:
            raise exceptions.ConfigurationError(
                "host-maintenance roll is recorded: it needs the "
                "persistence backend ([DEFAULT] state_dir or [persistence] "
                "connection)")
        self._conf = conf
        self._compute = compute
        self._backend = backend
        self._records = records_mod.Records(backend)
        self._live_progress = live_progress
        self._subscribers = list(subscribers or ())
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        self._current: runner_mod.Runner | None = None

    # -- control -----------------------------------------------------------

    def stop(self, abort_in_flight: bool, reason: str = "interrupted") -> None:
        """Start no new step (a running hook may finish); the current
        enter or exit run stops as a drain does."""
        with self._lock:
            self._stop_reason = reason
            current = self._current
        if current is not None:
            current.stop(abort_in_flight, reason)

    @property
    def stopping(self) -> bool:
        with self._lock:
            return self._stop_reason is not None

    # -- entry points ------------------------------------------------------

    def run(self, request: request_mod.MoveRequest,
            run_id: str | None = None) -> result_mod.RunResult:
        """Run a roll to its end (or to the step that stops it).

        ``run_id`` names the run (default: a new UUID), so that a caller
        can record it before the run starts.
        """
        run_id, book = self._create(request, run_id)
        return self._execute(run_id, request, book)

    def _create(self, request: request_mod.MoveRequest,
                run_id: str | None = None) -> tuple[str, Any]:
        """Check a roll's request, then record it: its id and logbook."""
        services = {s.host: s for s in self._compute.list_services()}
        for host in request.hosts:
            if host not in services:
                raise exceptions.InvalidInput(
                    f"host {host}: no nova-compute service there (hosts: "
                    f"{', '.join(sorted(services)) or 'none'})")
        # A hook plugin that is not installed is refused before anything.
        maintenance_flows.hook_flow(request.hosts[0],
                                    self._conf.maintenance.hook_task)
        run_id = run_id or str(uuid.uuid4())
        book = self._records.create(run_id, request.to_dict(),
                                    cloud=self._compute.target())
        book.meta["steps"] = {}
        return run_id, book

    def submit(self, request: request_mod.MoveRequest,
               board: Any) -> result_mod.RunResult:
        """Record a roll and post it as one job: the conductor that claims
        it runs the whole roll, and one that takes it over resumes it."""
        run_id, book = self._create(request)
        launcher = launching.Launcher(
            backend=self._backend, book=book, executor=None,
            runtime=runtime_mod.Runtime(self._conf, self._compute, request),
            store={constants.REQUEST: request.to_dict(), "run_id": run_id},
            board=board)
        job = launcher.post(launching.FlowSpec(
            ROLL_JOB, roll_job_flow, {"run_id": run_id}, {}))
        self._records.update(book, state=constants.RunState.POSTED,
                             jobs=[job])
        return result_mod.RunResult(run_id=run_id,
                                    operation=request.operation,
                                    outcomes=[], jobs=[job])

    def run_posted(self, run_id: str) -> result_mod.RunResult:
        """Run (or, after another conductor died, resume) a roll posted
        with :meth:`submit`: the job's claim makes this process its
        owner."""
        book = self._records.get(run_id)
        state = book.meta.get("state")
        if state not in (constants.RunState.POSTED,
                         constants.RunState.RUNNING,
                         constants.RunState.INTERRUPTED):
            raise exceptions.InvalidInput(
                f"run {run_id} is {state}: there is nothing to run")
        self._records.update(book, state=constants.RunState.RUNNING,
                             owner=records_mod.owner())
        request = request_mod.MoveRequest.from_dict(book.meta["request"])
        return self._execute(run_id, request, book)

    def resume(self, run_id: str,
               finished_too: bool = False) -> result_mod.RunResult:
        """Continue a roll at the host and step where it stopped.

        With ``finished_too``, a finished roll is "resumed" too: every
        step reads back its recorded result, and the result says what the
        roll did.
        """
        book = self._records.get(run_id)
        state = book.meta.get("state")
        resumable = {constants.RunState.RUNNING,
                     constants.RunState.INTERRUPTED}
        if finished_too:
            resumable.add(constants.RunState.FINISHED)
        if state not in resumable:
            raise exceptions.InvalidInput(
                f"run {run_id} is {state}: there is nothing to resume")
        self._records.check_layout(book)
        self._records.claim(book)
        request = request_mod.MoveRequest.from_dict(book.meta["request"])
        LOG.info("Resuming roll %s", run_id)
        return self._execute(run_id, request, book)

    # -- the roll ------------------------------------------------------------

    def _execute(self, run_id: str, request: request_mod.MoveRequest,
                 book: Any) -> result_mod.RunResult:
        started = time.monotonic()
        size = request.batch
        batches = [list(request.hosts[i:i + size])
                   for i in range(0, len(request.hosts), size)]
        rows = {host: _Host(host, number)
                for number, batch in enumerate(batches, 1)
                for host in batch}
        outcomes: list[dict[str, Any]] = []
        state = constants.RunState.FAILED
        try:
            for number, batch in enumerate(batches, 1):
                self._batch(run_id, request, book, number, batch, rows,
                            outcomes)
            state = constants.RunState.FINISHED
        except _Stopped:
            state = (constants.RunState.INTERRUPTED if self.stopping
                     else constants.RunState.FAILED)
        finally:
            self._records.update(book, state=state, hosts=[
                row.to_dict() for row in rows.values()])
        result = result_mod.RunResult(
            run_id=run_id, operation=request.operation, outcomes=outcomes,
            hosts=[row.to_dict() for row in rows.values()],
            interrupted=state == constants.RunState.INTERRUPTED,
        )
        result.elapsed_s = time.monotonic() - started
        result.requests = result_mod.total_requests(self._compute)
        return result

    def _batch(self, run_id: str, request: request_mod.MoveRequest,
               book: Any, number: int, batch: list[str],
               rows: dict[str, "_Host"],
               outcomes: list[dict[str, Any]]) -> None:
        LOG.info("Roll %s: batch %d: %s", run_id, number, ", ".join(batch))
        entered = self._child(book, f"{number}:enter", request_mod
                              .build_request(
                                  self._conf, Operation.MAINTENANCE_ENTER,
                                  hosts=batch, reason=request.reason
                                  or f"roll {run_id}",
                                  max_concurrent=request.max_concurrent))
        outcomes += entered["results"]
        for host in batch:
            row = rows[host]
            row.step, row.enter_run = "enter", entered["run_id"]
            row.moved_away = sum(
                1 for o in entered["results"] if o["source"] == host
                and o["status"] == constants.ServerStatus.MIGRATED)
        if entered.get("interrupted"):
            self._stopped(batch, rows, "interrupted while entering "
                          "maintenance")
        for found in entered.get("hosts") or ():
            if not found.get("empty"):
                self._stopped([found["host"]], rows, (
                    "not emptied (see run "
                    f"{entered['run_id']}): the roll stops before its "
                    "hook"))
        for host in batch:
            self._hook(run_id, request, book, host, rows[host])
        for host in batch:
            self._wait_up(request, host, rows[host])
        left = self._child(book, f"{number}:exit", request_mod.build_request(
            self._conf, Operation.MAINTENANCE_EXIT, hosts=batch,
            move_back=request.move_back,
            max_concurrent=request.max_concurrent))
        outcomes += left["results"]
        for found in left.get("hosts") or ():
            row = rows[found["host"]]
            row.step, row.exit_run = "exit", left["run_id"]
            row.moved_back = int(found.get("returned") or 0)
            row.done = bool(found.get("done"))
            if not row.done:
                row.reason = found.get("reason") or "not brought back"
        if left.get("interrupted"):
            self._stopped(batch, rows, "interrupted while leaving "
                          "maintenance")
        if any(o["status"] == constants.ServerStatus.FAILED
               for o in left["results"]):
            self._stopped(batch, rows, "a server failed to move back (see "
                          f"run {left['run_id']})")
        if not all(rows[host].done for host in batch):
            self._stopped([h for h in batch if not rows[h].done], rows,
                          "not brought back")

    def _stopped(self, hosts: list[str], rows: dict[str, "_Host"],
                 why: str) -> None:
        for host in hosts:
            rows[host].reason = rows[host].reason or why
        LOG.error("The roll stops: %s: %s", ", ".join(hosts), why)
        raise _Stopped(why)

    # -- steps ---------------------------------------------------------------

    def _child(self, book: Any, key: str,
               request: request_mod.MoveRequest) -> dict[str, Any]:
        """Run (or resume, or read back) the roll's enter or exit run
        ``key``; its result as JSON."""
        steps: dict[str, Any] = book.meta.setdefault("steps", {})
        step = steps.get(key)
        if step is not None and step.get("result") is not None:
            result: dict[str, Any] = step["result"]
            return result
        if self.stopping:
            raise _Stopped("interrupted")
        runner = runner_mod.Runner(
            self._conf, self._compute, backend=self._backend,
            live_progress=self._live_progress,
            subscribers=self._subscribers)
        with self._lock:
            self._current = runner
        try:
            if step is None:
                step = steps[key] = {"run_id": str(uuid.uuid4())}
                self._records.update(book, steps=steps)
                done = runner.run(request, run_id=step["run_id"])
            else:
                done = self._continue(runner, request, step["run_id"])
        finally:
            with self._lock:
                self._current = None
        if done.interrupted:
            # Left without a result: resuming the roll resumes this run.
            return done.to_json()
        step["result"] = done.to_json()
        self._records.update(book, steps=steps)
        return dict(step["result"])

    def _continue(self, runner: runner_mod.Runner,
                  request: request_mod.MoveRequest,
                  run_id: str) -> result_mod.RunResult:
        """A step's run after a crash: started again if it was never
        recorded, resumed otherwise (a finished one only reads back what
        it did)."""
        try:
            child = self._records.get(run_id)
        except exceptions.InvalidInput:
            return runner.run(request, run_id=run_id)
        finished = child.meta.get("state") == constants.RunState.FINISHED
        return runner.resume(run_id, finished_too=finished)

    def _hook(self, run_id: str, request: request_mod.MoveRequest,
              book: Any, host: str, row: "_Host") -> None:
        """Run the hook of ``host`` (a flow of the roll's record: one that
        ended is not run again)."""
        if self.stopping:
            self._stopped([host], {host: row}, "interrupted before its hook")
        row.step = "hook"
        runtime = runtime_mod.Runtime(self._conf, self._compute, request)
        try:
            with concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="nmf-hook") as pool:
                launcher = launching.Launcher(
                    backend=self._backend, book=book, executor=pool,
                    runtime=runtime,
                    store={constants.REQUEST: request.to_dict(),
                           "run_id": run_id})
                launcher.run_flow(launching.FlowSpec(
                    maintenance_flows.hook_flow_name(host),
                    flow_registry.factory(flow_registry.MAINTENANCE_HOOK),
                    {"host": host,
                     "hook_task": self._conf.maintenance.hook_task},
                    {}))
        except Exception as exc:  # noqa: BLE001 - the hook's own failure
            self._stopped([host], {host: row}, f"hook failed: {exc}")
        finally:
            runtime.close()

    def _wait_up(self, request: request_mod.MoveRequest, host: str,
                 row: "_Host") -> None:
        """Wait until the compute service of ``host`` is up (bounded by
        ``--wait-up``)."""
        row.step = "wait-up"
        deadline = time.monotonic() + request.wait_up
        while True:
            service = next((s for s in self._compute.list_services()
                            if s.host == host), None)
            if service is not None and service.up:
                return
            if self.stopping:
                self._stopped([host], {host: row},
                              "interrupted while waiting for it to be up")
            if time.monotonic() >= deadline:
                self._stopped([host], {host: row}, (
                    f"its compute service was not up within "
                    f"{request.wait_up:.0f} s (--wait-up); it stays in "
                    "maintenance"))
            time.sleep(UP_POLL_INTERVAL)


def runner_for(
    conf: cfg.ConfigOpts, compute: compute_base.Compute, backend: Any,
    operation: Operation,
) -> "runner_mod.Runner | Roll":
    """What runs ``operation``: a :class:`Roll` for a maintenance roll, a
    :class:`~nova_migrate_flows.engine.runner.Runner` for the others."""
    if operation is Operation.MAINTENANCE_ROLL:
        return Roll(conf, compute, backend=backend)
    return runner_mod.Runner(conf, compute, backend=backend)


def roll_job_flow(run_id: str) -> linear_flow.Flow:
    """The flow of a roll posted with ``submit``: one task that runs the
    whole roll ``run_id`` in the conductor."""
    flow = linear_flow.Flow(ROLL_JOB)
    flow.add(RollJob(run_id))
    return flow


class RollJob(base.BaseTask):
    """Runs a posted roll in the conductor that claimed its job; a
    conductor that takes the job over runs it again, which resumes the
    roll at the host and step where it stopped.

    Reversion strategy: N/A (each step of the roll leaves the cloud
    consistent on its own; the roll's record says where it stopped).
    """

    def __init__(self, run_id: str, **kwargs: Any):
        super().__init__(name=ROLL_JOB, inject={"roll_id": run_id},
                         **kwargs)

    def execute(self, runtime: runtime_mod.Runtime,
                roll_id: str) -> dict[str, Any]:
        backend = persistence.backend_from_conf(runtime.conf)
        try:
            result = Roll(runtime.conf, runtime.compute,
                          backend=backend).run_posted(roll_id)
        finally:
            backend.close()
        return {"exit_code": int(result.exit_code), "hosts": result.hosts}
