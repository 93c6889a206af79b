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
"""The conductor: claims jobs from the jobboard and runs their flows.

Each job is one flow (a source host's, or a single server's) recorded in
the shared persistence backend by ``submit``. The conductor runs it with
the same transient runtime as a direct run (Nova access, the poller, the
throttle), keeps its claim alive, and, when it picks up a job another
conductor left behind, runs it as a resume: moves already done are not
done again, moves in flight are adopted.
"""

import concurrent.futures
import threading
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from taskflow import states
from taskflow.conductors.backends import impl_nonblocking

from nova_migrate_flows import constants
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.engine import jobboard, listeners, records
from nova_migrate_flows.execution import runtime as runtime_mod

LOG = logging.getLogger(__name__)


class Conductor(impl_nonblocking.NonBlockingConductor):
    """A TaskFlow conductor that runs nova-migrate-flows jobs."""

    def __init__(
        self,
        name: str,
        conf: cfg.ConfigOpts,
        compute: compute_base.Compute,
        board: Any,
        backend: Any,
    ):
        self._conf = conf
        self._compute = compute
        self._records = records.Records(backend)
        self._tasks = concurrent.futures.ThreadPoolExecutor(
            max_workers=conf.engine.executor_workers,
            thread_name_prefix="nmf-task",
        )
        self._runtimes: dict[str, runtime_mod.Runtime] = {}
        self._lock = threading.Lock()
        super().__init__(
            name,
            board,
            persistence=backend,
            engine="parallel",
            engine_options={"executor": self._tasks},
            wait_timeout=conf.conductor.wait_timeout,
            max_simultaneous_jobs=conf.conductor.max_simultaneous_jobs,
        )

    def close(self) -> None:
        self._tasks.shutdown(wait=True)

    def _dispatch_job(self, job: Any) -> bool:
        detail = self._flow_detail_from_job(job)
        store = dict(detail.meta.get("store") or {})
        request = request_mod.MoveRequest.from_dict(store[constants.REQUEST])
        resuming = any(atom.state != states.PENDING for atom in detail)
        LOG.info("Conductor %s runs job %s (%s)%s", self.conductor.name,
                 job.uuid, job.name, " as a resume" if resuming else "")
        runtime = runtime_mod.Runtime(
            self._conf, self._compute, request, resuming=resuming
        )
        runtime.start()
        with self._lock:
            self._runtimes[job.uuid] = runtime
        try:
            return bool(super()._dispatch_job(job))
        finally:
            runtime.close()
            with self._lock:
                del self._runtimes[job.uuid]
            self._update_run(job)

    def _engine_from_job(self, job: Any) -> Any:
        engine = super()._engine_from_job(job)
        with self._lock:
            runtime = self._runtimes[job.uuid]
        engine.storage.inject({constants.RUNTIME: runtime}, transient=True)
        return engine

    def _listeners_from_job(self, job: Any, engine: Any) -> list[Any]:
        return [
            listeners.LoggingListener(engine),
            jobboard.ClaimKeeper(
                engine, job, getattr(self._jobboard, "claim_expiry", None)
            ),
        ]

    def _update_run(self, job: Any) -> None:
        """Mark the run finished once every one of its flows is."""
        try:
            book = self._records.get(job.book_uuid)
        except Exception:  # noqa: BLE001 - the record is informative only
            LOG.exception("Cannot read the run of job %s", job.uuid)
            return
        done = all(
            detail.state in (states.SUCCESS, states.REVERTED)
            for detail in book
        )
        if done and book.meta.get("state") == constants.RunState.POSTED:
            view = records.describe(book)
            summary = {status: sum(1 for s in view["servers"]
                                   if s["status"] == status)
                       for status in ("migrated", "failed", "skipped")}
            self._records.update(book, state=constants.RunState.FINISHED,
                                 summary=summary)
