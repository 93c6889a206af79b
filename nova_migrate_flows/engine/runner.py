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
"""The runner: what an operation runs, in which order, and its result.

The runner reads what an operation needs from Nova, records the run, runs
the preflight (and, for host operations, the flow that disables the source
hosts), then the operation's flows: one per source host, or the one flow of
a single server, whose factories it finds by the operation's name among the
``nova_migrate_flows.flows`` entry points. They run here, hosts in parallel
in engines that share one executor and one
:class:`~nova_migrate_flows.execution.runtime.Runtime`, or go to the
jobboard for conductors (:mod:`nova_migrate_flows.engine.launching`). What
the tasks stored becomes a :class:`~nova_migrate_flows.engine.result.
RunResult`. A recorded run is resumed after a crash (:meth:`Runner.resume`)
from the same flows.
"""

import concurrent.futures
import dataclasses
import functools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from taskflow import exceptions as tf_exc
from taskflow import states

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.engine import fencing, launching, maintenance
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.engine import result as result_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.flows import registry as flow_registry
from nova_migrate_flows.moves import planning
from nova_migrate_flows.request import Operation
from nova_migrate_flows.tasks import outcome as outcome_mod

LOG = logging.getLogger(__name__)

RunResult = result_mod.RunResult


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
        #: A stop asked before the run's runtime existed: (abort, reason).
        self._pending_stop: tuple[bool, str] | None = None

    # -- control -----------------------------------------------------------

    def stop(self, abort_in_flight: bool, reason: str = "interrupted") -> None:
        """Start no new migration; abort those in flight if asked. Asked
        before the run has started its migrations (while it checks and
        plans), it applies as soon as they would start."""
        with self._lock:
            runtime = self._runtime
            if runtime is None:
                self._pending_stop = (abort_in_flight, reason)
        if runtime is not None:
            runtime.stop(reason, abort_in_flight)

    # -- entry points ------------------------------------------------------

    def run(self, request: request_mod.MoveRequest,
            run_id: str | None = None) -> RunResult:
        """Run one operation to its end; raises for bad input and for
        errors that stop the whole run (Nova unreachable, ...).

        ``run_id`` names the run (default: a new UUID), so that a caller
        can record it before the run starts.
        """
        return self._start(request, board=None, run_id=run_id)

    def submit(self, request: request_mod.MoveRequest,
               board: Any) -> RunResult:
        """Check and plan an operation here, then post one job per source
        host (or one for a single server) for conductors to run."""
        if self._records is None:
            raise exceptions.ConfigurationError(
                "submit needs the persistence backend shared with the "
                "conductors"
            )
        return self._start(request, board=board)

    def resume(self, run_id: str, finished_too: bool = False) -> RunResult:
        """Finish a run that was interrupted or whose process died.

        With ``finished_too``, a finished run is "resumed" too: nothing
        runs again, and the result says what it did.
        """
        if self._records is None:
            raise exceptions.ConfigurationError(
                "resume needs the persistence backend"
            )
        book = self._records.get(run_id)
        state = book.meta.get("state")
        resumable = {constants.RunState.RUNNING,
                     constants.RunState.INTERRUPTED}
        if finished_too:
            resumable.add(constants.RunState.FINISHED)
        if state not in resumable:
            raise exceptions.InvalidInput(
                f"run {run_id} is {state}: there is nothing to resume"
            )
        self._records.check_layout(book)
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
                             services=None, board=None)

    # -- running -----------------------------------------------------------

    def _start(self, request: request_mod.MoveRequest,
               board: Any, run_id: str | None = None) -> RunResult:
        run_id = run_id or str(uuid.uuid4())
        services, request, known = self._prepare(request)
        book = None
        if self._records is not None and not request.dry_run:
            book = self._records.create(run_id, request.to_dict(),
                                        cloud=self._compute.target())
        return self._execute(run_id, request, book, resuming=False,
                             known=known, services=services, board=board)

    def _prepare(
        self, request: request_mod.MoveRequest
    ) -> tuple[list[Any], request_mod.MoveRequest, dict[str, Any]]:
        """Read what every run needs first. The compute services come
        first: only admins may list them, so other credentials are refused
        before anything else is read."""
        planning.check_request(request)
        services = self._compute.list_services()
        unsupported = planning.microversion_error(
            request, self._compute.api_versions()[1])
        if unsupported is not None:
            raise exceptions.Unsupported(unsupported)
        known: dict[str, Any] = {}
        if request.op is Operation.MAINTENANCE_EXIT:
            maintenance.check_exit(request.hosts, services)
        elif not request.op.is_host_operation:
            server = self._compute.find_server(request.servers[0])
            known[server.id] = server.to_dict()
            request = dataclasses.replace(request, servers=(server.id,))
        return services, request, known

    def _execute(
        self,
        run_id: str,
        request: request_mod.MoveRequest,
        book: Any,
        resuming: bool,
        known: dict[str, Any],
        services: list[Any] | None,
        board: Any,
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
            pending, self._pending_stop = self._pending_stop, None
        runtime.start()
        if pending is not None:
            runtime.stop(pending[1], pending[0])
        # The run writes its record only while it owns it: a resume
        # elsewhere takes it over (a dry run records nothing).
        backend, records = self._backend, self._records
        if book is not None:
            backend = fencing.FencedBackend(self._backend, run_id,
                                            fencing.token_of(book))
            records = records_mod.Records(backend)
        state = constants.RunState.FAILED
        result: RunResult | None = None
        try:
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers(request),
                thread_name_prefix="nmf-task",
            ) as executor:
                launcher = launching.Launcher(
                    backend=backend, book=book, executor=executor,
                    runtime=runtime, board=board,
                    store={constants.REQUEST: request.to_dict(),
                           "run_id": run_id},
                )
                result = _Run(self._conf, run_id, request, runtime,
                              launcher, known,
                              functools.partial(self._returns, request,
                                                runtime)).execute()
            result.interrupted = runtime.interrupted
            state = (constants.RunState.INTERRUPTED if result.interrupted
                     else constants.RunState.DRY_RUN if result.dry_run
                     else constants.RunState.POSTED if board is not None
                     else constants.RunState.FINISHED)
        except exceptions.InvalidInput:
            state = constants.RunState.REFUSED
            raise
        finally:
            runtime.close()
            with self._lock:
                self._runtime = None
            if book is not None and records is not None:
                extra = {"jobs": result.jobs} if board is not None and \
                    result is not None else {}
                records.update(
                    book, state=state,
                    summary=result.summary() if result else None, **extra,
                )
        result.elapsed_s = time.monotonic() - started
        result.requests = result_mod.total_requests(self._compute)
        return result

    def _returns(self, request: request_mod.MoveRequest,
                 runtime: runtime_mod.Runtime
                 ) -> dict[str, list[dict[str, Any]]]:
        """What ``host-maintenance exit --move-back`` may move back: the
        servers the ``enter`` run of each host moved away."""
        if not request.move_back:
            return {host: [] for host in request.hosts}
        return maintenance.returns(
            self._records, runtime.cloud.services().values(), request.hosts)

    def _workers(self, request: request_mod.MoveRequest) -> int:
        """Task threads: as configured, and one per lane (the lanes of all
        hosts run at once) up to four times that: past it, threads cost
        more in contention than waiting lanes do (nothing waits on a task
        thread to free a throttle slot, so fewer threads never stall)."""
        configured = self._conf.engine.executor_workers
        lanes = (live_lanes(self._conf, request) + 1
                 + request.max_concurrent_cold + 1)
        return max(configured, min(len(request.hosts) * lanes + 4,
                                   constants.TASK_THREADS_FACTOR
                                   * configured))


def live_lanes(conf: cfg.ConfigOpts, request: request_mod.MoveRequest
               ) -> int:
    """The live migrations a host's flow keeps in hand at once, besides
    the one that waits for a slot: Nova's limit and the pipeline's, and
    one more while Nova's notifications are watched (a move that ended
    may wait a while for its record to be read, see ``[watch]
    confirm_within``, and its lane with it)."""
    extra = 1 if (conf.watch.source == "notifications"
                  and conf.watch.confirm_within) else 0
    return request.max_concurrent + request.pipeline_depth + extra


class _Run:
    """One execution of one run's flows: which flows, in which order."""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        run_id: str,
        request: request_mod.MoveRequest,
        runtime: runtime_mod.Runtime,
        launcher: launching.Launcher,
        known: dict[str, Any],
        returns: Callable[[], dict[str, list[dict[str, Any]]]] | None = None,
    ):
        self._conf = conf
        self._returns = returns
        self._run_id = run_id
        self._request = request
        self._runtime = runtime
        self._launcher = launcher
        self._known = known
        #: The plan last split by host, and its parts (see _plan_of).
        self._split: tuple[dict[str, Any], dict[str | None,
                                                dict[str, Any]]] | None = None

    def execute(self) -> RunResult:
        if self._request.op is Operation.MAINTENANCE_EXIT:
            return self._exit()
        if self._request.op.is_host_operation:
            return self._hosts()
        return self._single()

    def _outcomes(
        self, engines: list[Any], plan: dict[str, Any] | None,
        by_host: dict[str, list[Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Every planned server's outcome, from what the flows stored (in
        the engines of its host's flows, when ``by_host`` says which: not
        every engine of the run for every server)."""
        results = []
        for server_id, entry in (plan or {}).items():
            outcome = None
            known = engines
            if by_host is not None:
                known = by_host.get(self._host_of(entry) or "", engines)
            for engine in reversed(known):  # a follow-up flow knows best
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
                        self._runtime.why_not_start()
                        or constants.NOT_STARTED
                    )
                    outcome["stopped"] = True
            results.append(outcome)
        return results

    # -- one server ----------------------------------------------------------

    def _single_spec(self, server_id: str) -> launching.FlowSpec:
        """The flow of a single-server operation."""
        request = self._request
        kwargs: dict[str, Any] = {
            "server_id": server_id,
            "preflight_tasks": list(self._conf.migration.preflight_tasks),
            "verify_tasks": list(self._conf.migration.verify_tasks),
        }
        if request.op is not Operation.RESIZE:
            kwargs["candidates"] = request.targets
        if request.op is Operation.MOVE:
            kwargs["kind"] = request.kind
        return launching.FlowSpec(
            constants.single_flow(request.operation, server_id),
            flow_registry.factory(request.operation), kwargs,
            {constants.SERVERS: self._known},
        )

    def _single(self) -> RunResult:
        request = self._request
        server_id = request.servers[0]
        if request.op is Operation.RESIZE:
            _check_flavor(self._runtime, request.flavor)
        if request.dry_run:
            plan = self._plan(lambda: self._known)
            return RunResult(run_id=self._run_id, operation=request.operation,
                             outcomes=self._outcomes([], plan), plan=plan,
                             dry_run=True)
        spec = self._single_spec(server_id)
        if self._launcher.posting:
            return RunResult(run_id=self._run_id, operation=request.operation,
                             outcomes=[], jobs=[self._launcher.post(spec)])
        engine = self._launcher.run_flow(spec)
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
        preflight = self._launcher.run_flow(launching.FlowSpec(
            constants.preflight_flow(request.operation),
            flow_registry.factory(flow_registry.PREFLIGHT),
            {
                "operation": request.operation,
                "preflight_tasks": list(self._conf.migration.preflight_tasks),
            },
            {constants.SERVERS: (servers or self._servers)()},
        ))
        plan: dict[str, Any] = preflight.storage.fetch(constants.PLAN)
        return plan

    def _exit(self) -> RunResult:
        """``host-maintenance exit``: plan the returns, then bring each
        host back (and its servers, with ``--move-back``), hosts in
        parallel."""
        request = self._request
        returns = self._returns
        if returns is None:
            raise ValueError("an exit run needs what it may move back")
        plan: dict[str, Any] = self._launcher.run_flow(launching.FlowSpec(
            constants.preflight_flow(request.operation),
            flow_registry.factory(flow_registry.RETURN_PLAN),
            {"operation": request.operation},
            {"returns": returns()},
        )).storage.fetch(constants.PLAN)
        return self._run_host_flows(plan)

    def _hosts(self) -> RunResult:
        request = self._request
        plan = self._plan()
        if not request.dry_run:
            self._disable_sources()
        return self._run_host_flows(plan)

    def _run_host_flows(self, plan: dict[str, Any]) -> RunResult:
        """Run (or post) each host's flow, and report."""
        request = self._request
        result = RunResult(run_id=self._run_id, operation=request.operation,
                           outcomes=[], plan=plan)
        if request.dry_run:
            result.dry_run = True
            result.outcomes = self._outcomes([], plan)
            return result
        if self._launcher.posting:
            result.outcomes = self._outcomes([], plan)
            result.jobs = [
                self._launcher.post(self._host_spec(
                    host, 1, self._moves(plan, host), plan))
                for host in request.hosts
            ]
            return result
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
        result.outcomes = self._outcomes(every, plan, engines)
        result.hosts = [result_mod.host_result(engines[host][-1], host)
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
        self._launcher.run_flow(launching.FlowSpec(
            constants.disable_flow(request.operation),
            flow_registry.factory(flow_registry.DISABLE_SERVICES),
            {"operation": request.operation, "hosts": list(request.hosts)},
            {},
        ))

    def _host_engines(self, host: str, plan: dict[str, Any]) -> list[Any]:
        """The engines of one host's flows: its flow and, when resuming,
        the follow-up flows an earlier resume added, oldest first."""
        moves = self._moves(plan, host)
        engines = [self._launcher.engine(self._host_spec(host, 1, moves,
                                                         plan))]
        while self._launcher.recorded(
                self._host_flow_name(host, len(engines) + 1)):
            engines.append(self._launcher.engine(self._host_spec(
                host, len(engines) + 1, moves, plan)))
        return engines

    def _follow_up(self, host: str, plan: dict[str, Any],
                   engines: list[Any]) -> Any | None:
        """A flow for the servers of ``host`` that an interruption kept
        from moving, or None."""
        outcomes = {o["server"]: o for o in self._outcomes(
            engines, self._plan_of(plan, host))}
        left = [(server_id, action)
                for server_id, action in self._moves(plan, host)
                if _not_started(outcomes.get(server_id))]
        if not left:
            return None
        LOG.info("Resuming %d server(s) of %s that an interruption kept "
                 "from moving", len(left), host)
        return self._launcher.engine(
            self._host_spec(host, len(engines) + 1, left, plan))

    def _host_flow_name(self, host: str, number: int) -> str:
        """The name of ``host``'s flow ``number``: the first is the host's
        flow, the next ones (``#2``, ...) are follow-ups of resumes."""
        name = constants.host_flow(self._request.operation, host)
        return name if number == 1 else f"{name}#{number}"

    def _host_spec(self, host: str, number: int,
                   moves: list[tuple[str, str]],
                   plan: dict[str, Any]) -> launching.FlowSpec:
        """``host``'s flow ``number``, moving ``moves``."""
        request = self._request
        kwargs: dict[str, Any] = {
            "operation": request.operation,
            "host": host,
            "moves": [[server_id, action] for server_id, action in moves],
            "verify_tasks": list(self._conf.migration.verify_tasks),
            "lane_count": {
                "live": live_lanes(self._conf, request),
                "cold": request.max_concurrent_cold,
            },
        }
        if request.op is not Operation.MAINTENANCE_EXIT:
            # Servers coming back go to their host; the others to the
            # targets asked for, members of a group one at a time.
            kwargs.update(candidates=request.targets,
                          serial=_serial(plan, moves))
        return launching.FlowSpec(
            self._host_flow_name(host, number),
            flow_registry.factory(request.operation),
            kwargs,
            {constants.PLAN: self._plan_of(plan, host)},
        )

    def _moves(self, plan: dict[str, Any],
               host: str) -> list[tuple[str, str]]:
        """What the plan moves for ``host``: off it in a drain, back onto
        it when it leaves maintenance."""
        return _moves(self._plan_of(plan, host))

    def _plan_of(self, plan: dict[str, Any], host: str) -> dict[str, Any]:
        """The part of the plan about ``host``'s servers: a host's flow
        stores only that (the whole plan in every host's flow grows with
        hosts times servers: 1.1 MB per host at 1,000 servers on 200
        hosts). The plan is split once for all hosts: scanning it for each
        host took time in hosts times servers."""
        if self._split is None or self._split[0] is not plan:
            self._split = (plan, _split(plan, self._host_of))
        return self._split[1].get(host, {})

    def _host_of(self, entry: dict[str, Any]) -> str | None:
        """The host whose flow moves the server of a plan ``entry``."""
        if self._request.op is Operation.MAINTENANCE_EXIT:
            return entry.get("target_host")
        host: str | None = entry["server"].get("host")
        return host

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
            self._launcher.run(engine)

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


HostOf = Callable[[dict[str, Any]], str | None]


def _split(plan: dict[str, Any],
           host_of: HostOf) -> dict[str | None, dict[str, Any]]:
    """The plan's entries by the host whose flow moves their server."""
    parts: dict[str | None, dict[str, Any]] = {}
    for server_id, entry in plan.items():
        parts.setdefault(host_of(entry), {})[server_id] = entry
    return parts


def _moves(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """What ``plan`` (one host's part) moves: (server id, action) pairs."""
    return [
        (server_id, entry["action"])
        for server_id, entry in plan.items()
        if entry["action"] != constants.SKIP
    ]


def _serial(plan: dict[str, Any],
            moves: list[tuple[str, str]]) -> list[list[str]]:
    """The servers of ``moves`` that move one after the other (the members
    of one hard anti-affinity group), in lists of two or more."""
    by_group: dict[str, list[str]] = {}
    for server_id, _ in moves:
        for group in plan[server_id].get("exclusive") or ():
            by_group.setdefault(group, []).append(server_id)
    return [ids for _, ids in sorted(by_group.items()) if len(ids) > 1]


def _not_started(outcome: dict[str, Any] | None) -> bool:
    """Whether the run's stop kept a server from moving."""
    return outcome is not None and bool(outcome["stopped"])


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
