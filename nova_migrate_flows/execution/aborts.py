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
"""Aborting a live migration: the one way, whoever asks for it.

The poller (on a timeout, or when a run stops with ``abort_in_flight``) and
a live migration's revert abort with :func:`abort_live_migration`: the
abort is a write sent once by
:func:`~nova_migrate_flows.execution.writes.send_once`, which looks at Nova
with :func:`abort_taken` after a lost answer and waits out HTTP 409s. As
that may take a while, the poller sends its aborts on :class:`AbortLanes`,
off its own thread, so that it goes on polling the other hosts meanwhile.
"""

import collections
import functools
import threading
from collections.abc import Callable
from concurrent import futures

from oslo_log import log as logging

from nova_migrate_flows.compute import base
from nova_migrate_flows.execution import writes

LOG = logging.getLogger(__name__)

#: Nova's instance action of an abort request.
ABORT_ACTION = "live_migration_cancel"
#: How many hosts' aborts are sent at the same time.
LANES = 4


def abort_live_migration(
    runtime: writes.Writer,
    compute: base.Compute,
    server_id: str,
    migration_id: int,
) -> None:
    """Ask Nova to abort a live migration, once.

    :raises ComputeError: Nova refused the abort (the migration may be
        ending), or its answer was lost and Nova shows no abort
    :raises OperationFailed: Nova answered 409 for ``[nova]
        conflict_timeout`` seconds
    """
    writes.send_once(
        runtime,
        f"the abort of live migration {migration_id} of {server_id}",
        functools.partial(compute.abort_migration, server_id, migration_id),
        functools.partial(abort_taken, compute, server_id, migration_id),
    )


def abort_taken(
    compute: base.Compute, server_id: str, migration_id: int
) -> bool | None:
    """True if the live migration ended, or Nova recorded an abort of the
    server since it began (Nova records the action as it takes the
    request; the migration ends a little later)."""
    if not any(m.id == migration_id
               for m in compute.server_migrations(server_id)):
        return True
    for action in compute.instance_actions(server_id):
        if action.action == ABORT_ACTION:
            return True
        if action.action == "live-migration":
            return None
    return None


class AbortLanes:
    """Runs aborts on a few threads of their own.

    The aborts of one host are sent one after the other, in the order they
    were asked for (the order of Nova's queue); those of different hosts
    side by side, ``lanes`` hosts at a time.
    """

    def __init__(self, lanes: int = LANES):
        self._lanes = lanes
        self._lock = threading.Lock()
        self._queued: dict[str, collections.deque[Callable[[], None]]] = {}
        self._executor: futures.ThreadPoolExecutor | None = None

    def submit(self, host: str, abort: Callable[[], None]) -> None:
        """Have ``abort`` run after the aborts of ``host`` asked before."""
        with self._lock:
            queued = self._queued.get(host)
            if queued is not None:
                queued.append(abort)
                return
            self._queued[host] = collections.deque([abort])
            if self._executor is None:
                self._executor = futures.ThreadPoolExecutor(
                    self._lanes, thread_name_prefix="migration-abort")
            self._executor.submit(self._drain, host)

    def shutdown(self) -> None:
        """Wait until every abort asked for has been sent."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _drain(self, host: str) -> None:
        """Run the aborts of ``host`` until none is left."""
        while True:
            with self._lock:
                queued = self._queued[host]
                if not queued:
                    del self._queued[host]
                    return
                abort = queued.popleft()
            try:
                abort()
            except Exception:  # noqa: BLE001 - keep the lane going
                LOG.exception("Aborting a migration from %s failed", host)
