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
"""One live-migration executor per compute host, as in a real cloud.

Nova 34 runs live migrations on a process-wide executor of
``max_concurrent_live_migrations`` workers. A real cloud runs one
nova-compute per process, so the limit is per host; the sandbox runs every
compute service in one process, where that executor would serialise the
live migrations of all hosts. :class:`PerHostLiveMigrationExecutors` gives
each host its own executor of that size.

This module imports Nova: only the sandbox server process may import it.
"""

import threading
from typing import Any

import fixtures
import futurist
from nova import thread_pool_factory
from nova.compute import manager as compute_manager
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_LIVE_MIGRATION = thread_pool_factory.ExecutorType.LIVE_MIGRATION


class PerHostLiveMigrationExecutors(fixtures.Fixture):
    """Route each compute service's live migrations to its own executor.

    ``ComputeManager._start_recorded_task`` is where a compute service
    hands a live migration to ``thread_pool_factory.spawn_on``; the wrapper
    notes which host is asking, and ``thread_pool_factory.get_executor``
    answers that host's executor for the live-migration type. Everything
    else Nova asks for still gets the process-wide executors.
    """

    def _setUp(self) -> None:
        self._executors: dict[str, futurist.ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._asking = threading.local()
        real_get_executor = thread_pool_factory.get_executor
        real_start_task = compute_manager.ComputeManager._start_recorded_task

        def get_executor(executor_type: Any) -> Any:
            host = getattr(self._asking, "host", None)
            if executor_type is _LIVE_MIGRATION and host is not None:
                return self._executor_for(host)
            return real_get_executor(executor_type)

        def start_recorded_task(
            manager: Any, executor_type: Any, *args: Any, **kwargs: Any
        ) -> Any:
            self._asking.host = manager.host
            try:
                return real_start_task(manager, executor_type, *args, **kwargs)
            finally:
                self._asking.host = None

        self.useFixture(fixtures.MonkeyPatch(
            "nova.thread_pool_factory.get_executor", get_executor))
        self.useFixture(fixtures.MonkeyPatch(
            "nova.compute.manager.ComputeManager._start_recorded_task",
            start_recorded_task))
        self.addCleanup(self._shutdown)

    def _executor_for(self, host: str) -> futurist.ThreadPoolExecutor:
        with self._lock:
            executor = self._executors.get(host)
            if executor is None:
                workers = (
                    thread_pool_factory.get_max_concurrent_live_migrations())
                executor = futurist.ThreadPoolExecutor(max_workers=workers)
                self._executors[host] = executor
                LOG.info("Live-migration executor of %s: %d workers",
                         host, workers)
            return executor

    def _shutdown(self) -> None:
        with self._lock:
            executors = list(self._executors.values())
            self._executors.clear()
        for executor in executors:
            executor.shutdown(wait=False)
