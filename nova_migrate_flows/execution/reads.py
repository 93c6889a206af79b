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
"""Reads of servers after their moves, batched: :class:`ServerReads`.

Every move ends with a read of its server, which the verifications check.
Moves of several source hosts often end together (one poll sees them all
end, or their notifications arrive together): their reads are gathered for
a short while and sent as one ``GET /servers/detail?changes-since=...``
(every server moved since the oldest of those moves was asked for; a moved
server always changed since). A server that read does not show (Nova's
clock, a server deleted meanwhile) is read on its own, as is a batch of
one, so the batching changes how many requests are sent, never what the
verifications see.
"""

import dataclasses
import datetime
import threading
import time
from collections.abc import Callable

from oslo_log import log as logging

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import base, models

LOG = logging.getLogger(__name__)

#: How long a batch waits at least for the reads that come with it (moves
#: ended by the same poll wake their tasks within milliseconds).
GATHER_MIN = 0.05
#: How long a batch waits at most, while other moves are still running
#: (a move that ends later waits for no batch: the last one is read at
#: once).
GATHER_MAX = 1.0


@dataclasses.dataclass
class _Batch:
    opened: float
    wanted: dict[str, datetime.datetime] = dataclasses.field(
        default_factory=dict)
    found: dict[str, models.Server] = dataclasses.field(default_factory=dict)
    done: threading.Event = dataclasses.field(
        default_factory=threading.Event)


class ServerReads:
    """Gathers the reads of servers whose moves ended into batches.

    :param busy: whether other moves are still running (whose reads may
        join the batch); a batch is sent at once when none is
    :param gather_max: the longest a read waits for others to join it
    """

    def __init__(
        self,
        compute: base.Compute,
        *,
        busy: Callable[[], bool] = lambda: False,
        gather_max: float = GATHER_MAX,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._compute = compute
        self._busy = busy
        self._gather_max = gather_max
        self._clock = clock
        self._lock = threading.Lock()
        self._open: _Batch | None = None
        #: Batched reads sent, for tests.
        self.batches = 0

    def get(self, server_id: str,
            since: datetime.datetime | None = None) -> models.Server:
        """The server as it is now (NotFound when it is gone). ``since``:
        a moment (Nova's clock) before the server last changed; without
        one, the server is read on its own."""
        if since is None:
            return self._compute.get_server(server_id)
        with self._lock:
            batch = self._open
            leader = batch is None
            if batch is None:
                batch = self._open = _Batch(opened=self._clock())
            batch.wanted[server_id] = since
        if leader:
            self._send(batch)
        else:
            batch.done.wait()
        server = batch.found.get(server_id)
        if server is None or server.status == "DELETED":
            return self._compute.get_server(server_id)
        return server

    def _send(self, batch: _Batch) -> None:
        """Wait for the reads that come with ``batch``, then send it."""
        time.sleep(GATHER_MIN)
        while (self._busy()
               and self._clock() - batch.opened < self._gather_max):
            time.sleep(GATHER_MIN)
        with self._lock:
            self._open = None
        try:
            if len(batch.wanted) > 1:
                since = min(batch.wanted.values())
                self.batches += 1
                for server in self._compute.list_changed_servers(
                        since.isoformat()):
                    if server.id in batch.wanted:
                        batch.found[server.id] = server
                LOG.debug("Read %d moved servers in one request (%d found)",
                          len(batch.wanted), len(batch.found))
        except exceptions.NovaMigrateFlowsError as exc:
            LOG.debug("Batched read of %d servers failed (%s); reading them "
                      "one by one", len(batch.wanted), exc)
        finally:
            batch.done.set()
