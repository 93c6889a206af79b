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
"""Loading and running engines: the one place where flows are run.

The runner reads what an operation needs from Nova, runs the preflight,
then the flows (one engine per source host, all sharing one executor the
runner owns), and turns what the tasks stored into a :class:`RunResult`.
Flows are built by their module-level factories with plain arguments and
recorded in the persistence backend, so the same flows can be resumed after
a crash (:meth:`Runner.resume`) or run by a conductor.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import taskflow.engines
from oslo_config import cfg
from oslo_log import log as logging
from taskflow import exceptions as tf_exc
from taskflow import states
from taskflow.utils import persistence_utils as p_utils

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.engine import listeners
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.flows import host as host_flows
from nova_migrate_flows.flows import single
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import outcome as outcome_mod

LOG = logging.getLogger(__name__)

ENGINE = "parallel"


@dataclasses.dataclass
class RunResult:
    """What a run did, server by server and host by host."""

    run_id: str
    operation: str
    outcomes: list[dict[str, Any]]
    hosts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    plan: dict[str, Any] | None = None
    dry_run: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0
    requests: int | None = None
    #: The jobs ``submit`` posted: job id, name and flow.
    jobs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o["status"] == status)

    @property
    def exit_code(self) -> exceptions.ExitCode:
        if self.interrupted:
            return exceptions.ExitCode.INTERRUPTED
        if self.dry_run:
            refused = any(
                e.get("refused") for e in (self.plan or {}).values()
            )
            return (exceptions.ExitCode.BAD_INPUT if refused
                    else exceptions.ExitCode.OK)
        if self.count(constants.ServerStatus.FAILED):
            return exceptions.ExitCode.SERVERS_FAILED
        if any(not h.get("empty", True) for h in self.hosts):
            return exceptions.ExitCode.SERVERS_FAILED
        return exceptions.ExitCode.OK

    def summary(self) -> dict[str, int]:
        return {
            status: self.count(status) for status in (
                constants.ServerStatus.MIGRATED, constants.ServerStatus.FAILED,
                constants.ServerStatus.SKIPPED,
            )
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "operation": self.operation,
            "results": self.outcomes,
            "summary": self.summary(),
            "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 1),
        }
        if self.hosts:
            data["hosts"] = self.hosts
        if self.jobs:
            data["jobs"] = self.jobs
        if self.dry_run:
            data["dry_run"] = True
            data["plan"] = [
                plan_row(entry) for entry in (self.plan or {}).values()
            ]
        return data


def plan_row(entry: dict[str, Any]) -> dict[str, Any]:
    """One server of a plan, as ``--dry-run`` shows it."""
    server = entry["server"]
    return {
        "server": server["id"],
        "name": server.get("name"),
        "host": server.get("host"),
        "flavor": (server.get("flavor") or {}).get("name"),
        "state": server.get("status"),
        "action": entry["action"],
        "target": entry.get("target_host") or "scheduler",
        "block_migration": entry.get("block_migration"),
        "checks": entry.get("checks", {}),
        "refused": entry.get("refused", []),
        "skip_reason": entry.get("skip_reason"),
    }


class Runner:
    """Runs operations against one cloud, recording them if asked."""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        compute: compute_base.Compute,
        *,
        backend: Any = None,
        live_progress: bool = False,
        subscribers: list[runtime_mod.Listener] | None = None,
    ):
        self._conf = conf
        self._compute = compute
        self._backend = backend
        self._records = (
            records_mod.Records(backend) if backend is not None else None
        )
        self._live_progress = live_progress
        self._subscribers = list(subscribers or ())
        self._lock = threading.Lock()
        self._runtime: runtime_mod.Runtime | None = None

    # -- control -----------------------------------------------------------

    def stop(self, abort_in_flight: bool, reason: str = "interrupted") -> None:
        """Start no new migration; abort those in flight if asked."""
        with self._lock:
            runtime = self._runtime
        if runtime is not None:
            runtime.stop(reason, abort_in_flight)

    # -- entry points ------------------------------------------------------

    def run(self, request: request_mod.MoveRequest) -> RunResult:
        """Run one operation to its end; raises for bad input and for
        errors that stop the whole run (Nova unreachable, ...)."""
        run_id = str(uuid.uuid4())
        services, request, known = self._prepare(request)
        book = None
        if self._records is not None and not request.dry_run:
            book = self._records.create(run_id, request.to_dict(),
                                        cloud=self._compute.target())
        return self._execute(run_id, request, book, resuming=False,
                             known=known, services=services)

    def _prepare(
        self, request: request_mod.MoveRequest
    ) -> tuple[list[Any], request_mod.MoveRequest, dict[str, Any]]:
        """Read what every run needs first. The compute services come
        first: only admins may list them, so other credentials are refused
        before anything else is read."""
        services = self._compute.list_services()
        known: dict[str, Any] = {}
        if not request.op.is_host_operation:
            server = self._compute.find_server(request.servers[0])
            known[server.id] = server.to_dict()
            request = dataclasses.replace(request, servers=(server.id,))
        return services, request, known

    def submit(self, request: request_mod.MoveRequest,
               board: Any) -> RunResult:
        """Check and plan an operation here, then post one job per source
        host (or one for a single server) for conductors to run."""
        if self._records is None:
            raise exceptions.ConfigurationError(
                "submit needs the persistence backend shared with the "
                "conductors"
            )
        run_id = str(uuid.uuid4())
        services, request, known = self._prepare(request)
        book = None
        if not request.dry_run:
            book = self._records.create(run_id, request.to_dict(),
                                        cloud=self._compute.target())
        runtime = runtime_mod.Runtime(self._conf, self._compute, request,
                                      services=services)
        try:
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=self._conf.engine.executor_workers,
                thread_name_prefix="nmf-task",
            ) as executor:
                run = _Run(self, run_id, request, book, runtime, executor,
                           known)
                result, jobs = run.post(board)
        except exceptions.InvalidInput:
            if book is not None:
                self._records.update(book, state=constants.RunState.REFUSED)
            raise
        if book is not None:
            self._records.update(book, state=constants.RunState.POSTED,
                                 jobs=jobs)
        result.jobs = jobs
        return result

    def resume(self, run_id: str) -> RunResult:
        """Finish a run that was interrupted or whose process died."""
        if self._records is None:
            raise exceptions.ConfigurationError(
                "resume needs the persistence backend"
            )
        book = self._records.get(run_id)
        state = book.meta.get("state")
        if state not in (constants.RunState.RUNNING,
                         constants.RunState.INTERRUPTED):
            raise exceptions.InvalidInput(
                f"run {run_id} is {state}: there is nothing to resume"
            )
        for detail in book:
            if detail.state == states.REVERTED:
                raise exceptions.InvalidInput(
                    f"run {run_id}: flow {detail.name} was rolled back; "
                    "start the operation again instead"
                )
        self._records.claim(book)
        request = request_mod.MoveRequest.from_dict(book.meta["request"])
        LOG.info("Resuming run %s (%s)", run_id, book.name)
        return self._execute(run_id, request, book, resuming=True, known={},
                             services=None)

    # -- running -----------------------------------------------------------

    def _execute(
        self,
        run_id: str,
        request: request_mod.MoveRequest,
        book: Any,
        resuming: bool,
        known: dict[str, Any],
        services: list[Any] | None,
    ) -> RunResult:
        started = time.monotonic()
        runtime = runtime_mod.Runtime(
            self._conf, self._compute, request, resuming=resuming,
            live_progress=self._live_progress, services=services,
        )
        for subscriber in self._subscribers:
            runtime.events.subscribe(subscriber)
        with self._lock:
            self._runtime = runtime
        runtime.start()
        state = constants.RunState.FAILED
        result: RunResult | None = None
        try:
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers(request),
                thread_name_prefix="nmf-task",
            ) as executor:
                run = _Run(self, run_id, request, book, runtime, executor,
                           known)
                result = (run.hosts() if request.op.is_host_operation
                          else run.single())
            result.interrupted = runtime.interrupted
            state = (constants.RunState.INTERRUPTED if result.interrupted
                     else constants.RunState.DRY_RUN if result.dry_run
                     else constants.RunState.FINISHED)
        except exceptions.InvalidInput:
            state = constants.RunState.REFUSED
            raise
        finally:
            runtime.close()
            with self._lock:
                self._runtime = None
            if book is not None:
                self._records.update(  # type: ignore[union-attr]
                    book, state=state,
                    summary=result.summary() if result else None,
                )
        result.elapsed_s = time.monotonic() - started
        result.requests = _total_requests(self._compute)
        return result


    def _workers(self, request: request_mod.MoveRequest) -> int:
        """Task threads: as configured, and one per lane (the lanes of all
        hosts run at once) up to four times that: past it, threads cost
        more in contention than waiting lanes do (nothing waits on a task
        thread to free a throttle slot, so fewer threads never stall)."""
        configured = self._conf.engine.executor_workers
        lanes = (request.max_concurrent + request.pipeline_depth + 1
                 + request.max_concurrent_cold + 1)
        return max(configured, min(len(request.hosts) * lanes + 4,
                                   4 * configured))


class _Run:
    """One execution of one run's flows."""

    def __init__(
        self,
        runner: Runner,
        run_id: str,
        request: request_mod.MoveRequest,
        book: Any,
        runtime: runtime_mod.Runtime,
        executor: concurrent.futures.Executor,
        known: dict[str, Any],
    ):
        self._runner = runner
        self._known = known
        self._conf = runner._conf
        self._run_id = run_id
        self._request = request
        self._book = book
        self._runtime = runtime
        self._executor = executor

    def _engine(
        self,
        name: str,
        factory: Callable[..., Any],
        factory_kwargs: Callable[[], dict[str, Any]],
        store: Callable[[], dict[str, Any]],
    ) -> Any:
        """The engine of the flow ``name``: the recorded one if this run
        has it already (a resume), a new one otherwise."""
        # A run without a logbook (a dry run) records nothing at all.
        backend = self._runner._backend if self._book is not None else None
        detail = records_mod.flow_detail(self._book, name)
        if detail is not None:
            engine = taskflow.engines.load_from_detail(
                detail, backend=backend, engine=ENGINE,
                executor=self._executor,
            )
        else:
            engine = taskflow.engines.load_from_factory(
                factory,
                factory_kwargs=factory_kwargs(),
                store=dict(store(), **{
                    constants.REQUEST: self._request.to_dict(),
                    "run_id": self._run_id,
                }),
                book=self._book,
                backend=backend,
                engine=ENGINE,
                executor=self._executor,
            )
        engine.storage.inject({constants.RUNTIME: self._runtime},
                              transient=True)
        return engine

    def _post(
        self,
        board: Any,
        name: str,
        factory: Callable[..., Any],
        factory_kwargs: dict[str, Any],
        store: dict[str, Any],
    ) -> dict[str, Any]:
        """Record flow ``name`` without running it and post it as a job."""
        backend = self._runner._backend
        flow = factory(**factory_kwargs)
        detail = p_utils.create_flow_detail(flow, book=self._book,
                                            backend=backend)
        taskflow.engines.save_factory_details(
            detail, factory, [], factory_kwargs, backend=backend
        )
        detail.meta["store"] = dict(
            store, **{constants.REQUEST: self._request.to_dict(),
                      "run_id": self._run_id}
        )
        with contextlib.closing(backend.get_connection()) as conn:
            conn.update_flow_details(detail)
        job = board.post(name, book=self._book,
                         details={"flow_uuid": detail.uuid})
        LOG.info("Posted job %s for flow %s", job.uuid, name)
        return {"job_id": job.uuid, "name": name, "flow_uuid": detail.uuid}

    def post(self, board: Any) -> tuple[RunResult, list[dict[str, Any]]]:
        """Plan (for host operations) and post the flows as jobs."""
        request = self._request
        if not request.op.is_host_operation:
            server_id = request.servers[0]
            factory, kwargs = self._single_factory(server_id)
            name = constants.single_flow(request.operation, server_id)
            job = self._post(board, name, factory, kwargs,
                             {constants.SERVERS: self._known})
            return RunResult(run_id=self._run_id,
                             operation=request.operation,
                             outcomes=[]), [job]
        plan = self._plan()
        result = RunResult(run_id=self._run_id, operation=request.operation,
                           outcomes=self._outcomes([], plan), plan=plan,
                           dry_run=request.dry_run)
        if request.dry_run:
            return result, []
        self._disable_sources()
        jobs = [
            self._post(board, constants.host_flow(request.operation, host),
                       host_flows.host_flow,
                       self._host_flow_kwargs(host, _moves(plan, host))(),
                       {constants.PLAN: _plan_of(plan, host)})
            for host in request.hosts
        ]
        return result, jobs

    def _run_engine(self, engine: Any) -> None:
        if engine.storage.get_flow_state() == states.SUCCESS:
            # Done before a resume: only map its results for fetching.
            engine.compile()
            engine.prepare()
            return
        with listeners.LoggingListener(engine):
            engine.run()

    def _outcomes(
        self, engines: list[Any], plan: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """Every planned server's outcome, from what the flows stored."""
        results = []
        for server_id, entry in (plan or {}).items():
            outcome = None
            for engine in reversed(engines):  # a follow-up flow knows best
                try:
                    outcome = engine.storage.fetch(
                        constants.server_key("outcome", server_id)
                    )
                    break
                except tf_exc.NotFound:
                    continue
            if outcome is None:
                outcome = outcome_mod.new_outcome(entry)
                if entry["action"] != constants.SKIP:
                    outcome["reason"] = (
                        self._runtime.why_not_start() or "not started"
                    )
            results.append(outcome)
        return results

    # -- one server ----------------------------------------------------------

    def _single_factory(
        self, server_id: str
    ) -> tuple[Callable[..., Any], dict[str, Any]]:
        request = self._request
        kwargs: dict[str, Any] = {
            "server_id": server_id,
            "preflight_tasks": list(self._conf.migration.preflight_tasks),
            "verify_tasks": list(self._conf.migration.verify_tasks),
        }
        if request.op is Operation.RESIZE:
            _check_flavor(self._runtime, request.flavor)
            return single.resize_flow, kwargs
        kwargs["candidates"] = request.targets
        if request.op is Operation.MOVE:
            kwargs["kind"] = request.kind
            return single.move_flow, kwargs
        return single.live_migration_flow, kwargs

    def single(self) -> RunResult:
        request = self._request
        server_id = request.servers[0]
        if request.dry_run:
            if request.op is Operation.RESIZE:
                _check_flavor(self._runtime, request.flavor)
            plan = self._plan(lambda: self._known)
            return RunResult(run_id=self._run_id, operation=request.operation,
                             outcomes=self._outcomes([], plan), plan=plan,
                             dry_run=True)
        factory, kwargs = self._single_factory(server_id)
        engine = self._engine(
            constants.single_flow(request.operation, server_id),
            factory,
            lambda: kwargs,
            lambda: {constants.SERVERS: self._known},
        )
        self._run_engine(engine)
        plan = engine.storage.fetch(constants.PLAN)
        return RunResult(
            run_id=self._run_id,
            operation=request.operation,
            outcomes=self._outcomes([engine], plan),
            plan=plan,
        )

    # -- hosts ---------------------------------------------------------------

    def _servers(self) -> dict[str, dict[str, Any]]:
        services = self._runtime.cloud.services()
        for host in self._request.hosts:
            if host not in services:
                known = ", ".join(sorted(services)) or "none"
                raise exceptions.InvalidInput(
                    f"host {host}: no nova-compute service there (hosts: "
                    f"{known})"
                )
        return {
            server.id: server.to_dict()
            for host in self._request.hosts
            for server in self._runtime.compute.list_servers(host)
        }

    def _plan(
        self, servers: Callable[[], dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Run (or, on a resume, reread) the preflight of ``servers``
        (default: every server of the source hosts)."""
        request = self._request
        preflight = self._engine(
            constants.preflight_flow(request.operation),
            host_flows.preflight_flow,
            lambda: {
                "operation": request.operation,
                "preflight_tasks": list(self._conf.migration.preflight_tasks),
            },
            lambda: {constants.SERVERS: (servers or self._servers)()},
        )
        self._run_engine(preflight)
        plan: dict[str, Any] = preflight.storage.fetch(constants.PLAN)
        return plan

    def hosts(self) -> RunResult:
        request = self._request
        plan = self._plan()
        result = RunResult(run_id=self._run_id, operation=request.operation,
                           outcomes=[], plan=plan)
        if request.dry_run:
            result.dry_run = True
            result.outcomes = self._outcomes([], plan)
            return result
        self._disable_sources()
        # Flows are recorded while no engine runs: TaskFlow saves a new
        # flow by saving the whole logbook, which running engines write to.
        engines = {host: self._host_engines(host, plan)
                   for host in request.hosts}
        self._run_hosts(engines)
        if self._runtime.resuming and not self._runtime.stopping:
            left = {host: self._follow_up(host, plan, engines[host])
                    for host in request.hosts}
            self._run_hosts({host: [engine] for host, engine in left.items()
                             if engine is not None})
            for host, engine in left.items():
                if engine is not None:
                    engines[host].append(engine)
        every = [engine for host in request.hosts for engine in engines[host]]
        result.outcomes = self._outcomes(every, plan)
        result.hosts = [_host_result(engines[host][-1], host)
                        for host in request.hosts]
        return result

    def _disable_sources(self) -> None:
        """Disable every source host before any of them drains (so that no
        server lands on another source host). A failed host's service is
        forced down first, in its own flow: disabling a service Nova still
        thinks is up makes Nova call its compute, which does not answer."""
        request = self._request
        if request.op is Operation.HOST_EVACUATE:
            return
        self._run_engine(self._engine(
            constants.disable_flow(request.operation),
            host_flows.disable_flow,
            lambda: {"operation": request.operation,
                     "hosts": list(request.hosts)},
            dict,
        ))

    def _host_engines(self, host: str, plan: dict[str, Any]) -> list[Any]:
        """The engines of one host's flows: its flow and, when resuming,
        the follow-up flows an earlier resume added, oldest first."""
        moves = _moves(plan, host)
        engines = [self._host_engine(host, 1, moves, plan)]
        while records_mod.flow_detail(
                self._book, self._host_flow_name(host, len(engines) + 1)):
            engines.append(self._host_engine(host, len(engines) + 1, moves,
                                             plan))
        return engines

    def _follow_up(self, host: str, plan: dict[str, Any],
                   engines: list[Any]) -> Any | None:
        """A flow for the servers of ``host`` that an interruption kept
        from moving, or None."""
        outcomes = {o["server"]: o for o in self._outcomes(engines, plan)}
        left = [(server_id, action) for server_id, action in _moves(plan, host)
                if _not_started(outcomes.get(server_id))]
        if not left:
            return None
        LOG.info("Resuming %d server(s) of %s that an interruption kept "
                 "from moving", len(left), host)
        return self._host_engine(host, len(engines) + 1, left, plan)

    def _host_flow_name(self, host: str, number: int) -> str:
        """The name of ``host``'s flow ``number``: the first is the host's
        flow, the next ones (``#2``, ...) are follow-ups of resumes."""
        name = constants.host_flow(self._request.operation, host)
        return name if number == 1 else f"{name}#{number}"

    def _host_engine(self, host: str, number: int,
                     moves: list[tuple[str, str]],
                     plan: dict[str, Any]) -> Any:
        """The engine of ``host``'s flow ``number``, moving ``moves``."""
        return self._engine(self._host_flow_name(host, number),
                            host_flows.host_flow,
                            self._host_flow_kwargs(host, moves),
                            lambda: {constants.PLAN: _plan_of(plan, host)})

    def _run_hosts(self, engines: dict[str, list[Any]]) -> None:
        """Run each host's engines in order, hosts in parallel; raise the
        first error that ended a host."""
        done = self._in_parallel({
            host: functools.partial(self._run_engines, host_engines)
            for host, host_engines in engines.items()
        })
        errors = [e for e in done.values() if isinstance(e, BaseException)]
        if errors:
            raise errors[0]

    def _run_engines(self, engines: list[Any]) -> None:
        for engine in engines:
            self._run_engine(engine)

    def _host_flow_kwargs(
        self, host: str, moves: list[tuple[str, str]]
    ) -> Callable[[], dict[str, Any]]:
        request = self._request

        def kwargs() -> dict[str, Any]:
            return {
                "operation": request.operation,
                "host": host,
                "moves": [[server_id, action] for server_id, action in moves],
                "verify_tasks": list(self._conf.migration.verify_tasks),
                "candidates": request.targets,
                "lane_count": {
                    "live": request.max_concurrent + request.pipeline_depth,
                    "cold": request.max_concurrent_cold,
                },
            }

        return kwargs

    def _in_parallel(
        self, work: dict[str, Callable[[], Any]]
    ) -> dict[str, Any]:
        """Run each host's work in a thread of its own; each host's result,
        or the exception that ended it."""
        done: dict[str, Any] = {}

        def run(host: str, job: Callable[[], Any]) -> None:
            try:
                done[host] = job()
            except BaseException as exc:  # noqa: BLE001 - reported below
                LOG.error("The flow of host %s failed: %s", host, exc)
                done[host] = exc

        threads = [
            threading.Thread(target=run, args=(host, job),
                             name=f"nmf-host-{host}", daemon=True)
            for host, job in work.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return done


def _plan_of(plan: dict[str, Any], host: str) -> dict[str, Any]:
    """The part of the plan about ``host``'s servers: a host's flow stores
    only that (the whole plan in every host's flow grows with hosts times
    servers: 1.1 MB per host at 1,000 servers on 200 hosts)."""
    return {server_id: entry for server_id, entry in plan.items()
            if entry["server"].get("host") == host}


def _moves(plan: dict[str, Any], host: str) -> list[tuple[str, str]]:
    """What the plan moves off ``host``: (server id, action) pairs."""
    return [
        (server_id, entry["action"])
        for server_id, entry in plan.items()
        if entry["server"].get("host") == host
        and entry["action"] != constants.SKIP
    ]


def _not_started(outcome: dict[str, Any] | None) -> bool:
    """Whether a server was kept from moving by an interruption."""
    return (
        outcome is not None
        and outcome["status"] == constants.ServerStatus.SKIPPED
        and outcome["reason"].startswith((constants.NOT_STARTED,
                                          constants.INTERRUPTED))
    )


def _check_flavor(runtime: runtime_mod.Runtime, flavor: str | None) -> None:
    if not flavor:
        raise exceptions.InvalidInput("FLAVOR: a flavor is required")
    try:
        runtime.cloud.flavor(flavor)
    except exceptions.NotFound:
        raise exceptions.InvalidInput(
            f"flavor {flavor!r}: no such flavor; list them with "
            "'openstack flavor list'"
        ) from None


def _host_result(engine: Any, host: str) -> dict[str, Any]:
    state = engine.storage.get_flow_state()
    try:
        result = engine.storage.fetch(constants.host_key("result", host))
    except tf_exc.NotFound:
        result = None
    if not isinstance(result, dict):  # not reached, or failed
        return {"host": host, "flow": state, "empty": False,
                "service": "unknown"}
    return dict(result, flow=state)


def _total_requests(compute: compute_base.Compute) -> int | None:
    counts = getattr(compute, "request_counts", None)
    if counts is None:
        return None
    return sum(v for k, v in counts.items() if k.endswith(" compute"))
