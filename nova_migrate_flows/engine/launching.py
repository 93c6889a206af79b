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
"""Running a flow, or posting it to the jobboard: the one place where
TaskFlow engines are loaded.

A :class:`FlowSpec` says which flow: its name (the name of its flow detail
in the run's logbook), its module-level factory, the factory's plain
arguments and the store. A :class:`Launcher` either loads it and runs it in
this process (the flow detail the run recorded already, on a resume) or
records it and posts it as a job for the conductors, as Octavia's
controller worker does. Every engine gets the run's
:class:`~nova_migrate_flows.execution.runtime.Runtime` as the transient
``runtime`` and runs under the logging listener.
"""

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import taskflow.engines
from oslo_log import log as logging
from taskflow import states
from taskflow.utils import persistence_utils as p_utils

from nova_migrate_flows import constants
from nova_migrate_flows.engine import book_writes, listeners
from nova_migrate_flows.engine import records as records_mod
from nova_migrate_flows.execution import runtime as runtime_mod

LOG = logging.getLogger(__name__)

ENGINE = "parallel"


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """A flow to run or post."""

    name: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    store: dict[str, Any]


class Launcher:
    """Runs the flows of one run here, or posts them to a jobboard."""

    def __init__(
        self,
        *,
        backend: Any,
        book: Any,
        executor: Any,
        runtime: runtime_mod.Runtime | None,
        store: dict[str, Any],
        board: Any = None,
    ):
        """``runtime`` is None for a launcher that only posts flows."""
        self._backend = backend
        self._book = book
        self._executor = executor
        self._runtime = runtime
        self._store = store
        self._board = board

    @property
    def posting(self) -> bool:
        """Whether flows go to the jobboard rather than run here."""
        return self._board is not None

    def recorded(self, name: str) -> bool:
        """Whether the run has a flow called ``name`` already."""
        return records_mod.flow_detail(self._book, name) is not None

    def engine(self, spec: FlowSpec) -> Any:
        """The engine of ``spec``'s flow: the recorded one if the run has
        it already (a resume), a new one otherwise."""
        if self._runtime is None:
            raise ValueError("this launcher only posts flows: it has no "
                             "runtime to run them with")
        # A run without a logbook (a dry run) records nothing at all.
        backend = self._backend if self._book is not None else None
        detail = records_mod.flow_detail(self._book, spec.name)
        if detail is None:
            # The flow just built runs: rebuilding it from its factory
            # (as a resume does) would cost as much again.
            flow, detail = self._record(spec, backend)
        else:
            flow = taskflow.engines.flow_from_detail(detail)
        engine = taskflow.engines.load(
            flow, flow_detail=detail, store=(detail.meta or {}).get("store"),
            backend=backend, engine=ENGINE, executor=self._executor,
        )
        engine.storage.inject({constants.RUNTIME: self._runtime},
                              transient=True)
        return engine

    def _record(self, spec: FlowSpec, backend: Any) -> tuple[Any, Any]:
        """Build ``spec``'s flow and add its flow detail to the run's
        logbook, with its factory and store in its meta, in one write: a
        process killed at any moment leaves either no detail or one a
        resume can load. The flow, and its detail."""
        flow = spec.factory(**spec.kwargs)
        detail = p_utils.create_flow_detail(flow, book=self._book)
        taskflow.engines.save_factory_details(detail, spec.factory, [],
                                              spec.kwargs)
        detail.meta["store"] = dict(spec.store, **self._store)
        if backend is not None:
            with contextlib.closing(backend.get_connection()) as conn:
                book_writes.add_flow_detail(conn, self._book, detail)
        return flow, detail

    def run(self, engine: Any) -> None:
        """Run an engine to its end (one that ended before a resume only
        maps its results, so they can be fetched)."""
        if engine.storage.get_flow_state() == states.SUCCESS:
            engine.compile()
            engine.prepare()
            return
        with listeners.LoggingListener(engine):
            engine.run()

    def run_flow(self, spec: FlowSpec) -> Any:
        """Load and run ``spec``'s flow here; its engine."""
        engine = self.engine(spec)
        self.run(engine)
        return engine

    def post(self, spec: FlowSpec) -> dict[str, Any]:
        """Record ``spec``'s flow without running it and post it as a
        job; the job's id, name and flow."""
        _, detail = self._record(spec, self._backend)
        job = self._board.post(spec.name, book=self._book,
                               details={"flow_uuid": detail.uuid})
        LOG.info("Posted job %s for flow %s", job.uuid, spec.name)
        return {"job_id": job.uuid, "name": spec.name,
                "flow_uuid": detail.uuid}
