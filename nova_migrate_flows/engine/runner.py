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
runner owns), and turns what the tasks recorded into a :class:`RunResult`.
Flows are built by their module-level factories with plain arguments, so
the same flows can be run by a conductor or resumed after a crash.
"""

import concurrent.futures
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
import taskflow.engines
from taskflow import states

from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.engine import listeners
from nova_migrate_flows.engine import runtime as runtime_mod
from nova_migrate_flows import exceptions
from nova_migrate_flows.flows import host as host_flows
from nova_migrate_flows.flows import names
from nova_migrate_flows.flows import single
from nova_migrate_flows import request as request_mod
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
        if self.count(outcome_mod.FAILED):
            return exceptions.ExitCode.SERVERS_FAILED
        if any(not h.get("empty", True) for h in self.hosts):
            return exceptions.ExitCode.SERVERS_FAILED
        return exceptions.ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "operation": self.operation,
            "results": self.outcomes,
            "summary": {
                status: self.count(status) for status in (
                    outcome_mod.MIGRATED, outcome_mod.FAILED,
                    outcome_mod.SKIPPED,
                )
            },
            "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 1),
        }
        if self.hosts:
            data["hosts"] = self.hosts
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
    """Runs operations against one cloud."""

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

    # -- running -----------------------------------------------------------

    def run(self, request: request_mod.MoveRequest) -> RunResult:
        """Run one operation to its end; raises for bad input and for
        errors that stop the whole run (Nova unreachable, ...)."""
        started = time.monotonic()
        run_id = str(uuid.uuid4())
        runtime = runtime_mod.Runtime(
            self._conf, self._compute, request,
            live_progress=self._live_progress,
        )
        for subscriber in self._subscribers:
            runtime.events.subscribe(subscriber)
        with self._lock:
            self._runtime = runtime
        runtime.start()
        workers = self._conf.engine.executor_workers
        try:
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="nmf-task"
            ) as executor:
                if request.op.is_host_operation:
                    result = self._run_hosts(
                        runtime, request, run_id, executor
                    )
                else:
                    result = self._run_single(
                        runtime, request, run_id, executor
                    )
        finally:
            runtime.close()
            with self._lock:
                self._runtime = None
        result.elapsed_s = time.monotonic() - started
        result.interrupted = runtime.stopping and (
            runtime.stop_reason or ""
        ).startswith("interrupted")
        result.requests = _total_requests(self._compute)
        return result

    def _store(
        self,
        request: request_mod.MoveRequest,
        run_id: str,
        **values: Any,
    ) -> dict[str, Any]:
        return {names.REQUEST: request.to_dict(), "run_id": run_id,
                **values}

    def _engine(
        self,
        factory: Callable[..., Any],
        factory_kwargs: dict[str, Any],
        store: dict[str, Any],
        runtime: runtime_mod.Runtime,
        executor: concurrent.futures.Executor,
    ) -> Any:
        engine = taskflow.engines.load_from_factory(
            factory,
            factory_kwargs=factory_kwargs,
            store=store,
            engine=ENGINE,
            executor=executor,
            backend=self._backend,
        )
        engine.storage.inject({names.RUNTIME: runtime}, transient=True)
        return engine

    def _run_engine(self, engine: Any) -> None:
        with listeners.LoggingListener(engine):
            engine.run()

    # -- one server ----------------------------------------------------------

    def _run_single(
        self,
        runtime: runtime_mod.Runtime,
        request: request_mod.MoveRequest,
        run_id: str,
        executor: concurrent.futures.Executor,
    ) -> RunResult:
        compute = runtime.compute
        server = compute.find_server(request.servers[0])
        if request.op is Operation.RESIZE:
            _check_flavor(runtime, request.flavor)
            factory: Callable[..., Any] = single.resize_flow
            kwargs: dict[str, Any] = {}
        else:
            factory = single.live_migration_flow
            kwargs = {"candidates": request.targets}
        kwargs.update(
            server_id=server.id,
            preflight_tasks=self._preflight_tasks(request),
            verify_tasks=list(self._conf.migration.verify_tasks),
        )
        engine = self._engine(
            factory, kwargs,
            self._store(request, run_id,
                        **{names.SERVERS: {server.id: server.to_dict()}}),
            runtime, executor,
        )
        self._run_engine(engine)
        plan = engine.storage.fetch(names.PLAN)
        return RunResult(
            run_id=run_id,
            operation=request.operation,
            outcomes=_outcomes(runtime, plan),
            plan=plan,
        )

    # -- hosts ---------------------------------------------------------------

    def _run_hosts(
        self,
        runtime: runtime_mod.Runtime,
        request: request_mod.MoveRequest,
        run_id: str,
        executor: concurrent.futures.Executor,
    ) -> RunResult:
        services = runtime.cloud.services()
        for host in request.hosts:
            if host not in services:
                known = ", ".join(sorted(services)) or "none"
                raise exceptions.InvalidInput(
                    f"host {host}: no nova-compute service there (hosts: "
                    f"{known})"
                )
        servers = {
            server.id: server.to_dict()
            for host in request.hosts
            for server in runtime.compute.list_servers(host)
        }
        preflight = self._engine(
            host_flows.preflight_flow,
            {"operation": request.operation,
             "preflight_tasks": self._preflight_tasks(request)},
            self._store(request, run_id, **{names.SERVERS: servers}),
            runtime, executor,
        )
        self._run_engine(preflight)
        plan: dict[str, Any] = preflight.storage.fetch(names.PLAN)
        result = RunResult(run_id=run_id, operation=request.operation,
                           outcomes=[], plan=plan)
        if request.dry_run:
            result.dry_run = True
            result.outcomes = _outcomes(runtime, plan)
            return result
        engines = {
            host: self._engine(
                host_flows.host_flow,
                {
                    "operation": request.operation,
                    "host": host,
                    "moves": [
                        [server_id, entry["action"]]
                        for server_id, entry in plan.items()
                        if entry["server"].get("host") == host
                        and entry["action"] != request_mod.SKIP
                    ],
                    "verify_tasks": list(self._conf.migration.verify_tasks),
                    "candidates": request.targets,
                    "lane_count": {
                        "live": request.max_concurrent
                        + request.pipeline_depth,
                        "cold": request.max_concurrent_cold,
                    },
                },
                self._store(request, run_id, **{names.PLAN: plan}),
                runtime, executor,
            )
            for host in request.hosts
        }
        errors = self._run_parallel(engines)
        result.outcomes = _outcomes(runtime, plan)
        result.hosts = [
            _host_result(engine, host) for host, engine in engines.items()
        ]
        if errors:
            raise errors[0]
        return result

    def _run_parallel(self, engines: dict[str, Any]) -> list[BaseException]:
        errors: list[BaseException] = []

        def run(host: str, engine: Any) -> None:
            try:
                self._run_engine(engine)
            except BaseException as exc:  # noqa: BLE001 - reported below
                LOG.error("The flow of host %s failed: %s", host, exc)
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(host, engine),
                             name=f"nmf-host-{host}", daemon=True)
            for host, engine in engines.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return errors

    def _preflight_tasks(self, request: request_mod.MoveRequest) -> list[str]:
        return list(self._conf.migration.preflight_tasks)


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


def _outcomes(
    runtime: runtime_mod.Runtime, plan: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Every planned server's outcome, in plan order."""
    results = []
    for server_id, entry in (plan or {}).items():
        outcome = runtime.outcomes.get(server_id)
        if outcome is None:
            outcome = outcome_mod.new_outcome(entry)
            if entry["action"] != request_mod.SKIP:
                outcome["reason"] = runtime.why_not_start() or "not started"
        results.append(outcome)
    return results


def _host_result(engine: Any, host: str) -> dict[str, Any]:
    try:
        result = engine.storage.fetch(names.host_key("result", host))
    except Exception:  # noqa: BLE001 - the flow did not get that far
        result = None
    state = engine.storage.get_flow_state()
    if not result:
        return {"host": host, "flow": state, "empty": state == states.SUCCESS}
    return dict(result, flow=state)


def _total_requests(compute: compute_base.Compute) -> int | None:
    counts = getattr(compute, "request_counts", None)
    if counts is None:
        return None
    return sum(v for k, v in counts.items() if k.endswith(" compute"))



