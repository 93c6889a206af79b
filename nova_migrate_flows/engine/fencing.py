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
"""Fencing: a run writes its record only while it still owns it.

Each claim of a run, its start and every resume, writes a fresh owner token
in the run's logbook (``meta["owner"]["token"]``, see
:func:`nova_migrate_flows.engine.records.owner`). The runner reaches the
persistence backend only through a :class:`FencedBackend` holding its
token: before every write (TaskFlow's flow and atom detail updates, and the
logbook saves of the launcher and of the run's state), a connection reads
the run's stored logbook without its flows (on a SQL backend, its metadata
alone: one query of one column), and compares the owner token with its own.
A run that finds another token was resumed elsewhere: it raises
:class:`~nova_migrate_flows.exceptions.RunTakenOver` instead of writing, so
whatever that run did after losing the record (a task it was blocked in
that fails, the revert TaskFlow would start, its final state) never changes
what the resume recorded; TaskFlow's engine stops at the write it refused,
and the run ends with that error. TaskFlow records that a task runs (or
reverts) before it runs it, so a run taken over starts no task and no
revert any more: only a task already running finishes what it does in
Nova, which the resume adopts as it adopts the work of a dead process.

Only the runner's runs are fenced. A conductor runs a job under the job's
claim on the jobboard, which decides who runs it, and writes through
TaskFlow's own persistence; ``submit`` fences what it writes itself (the
run, its flows, their posting). A roll's own record (its steps) is written
without a fence; each enter and exit run it starts is fenced.

The remaining window. Our SQL backend reads the owner inside each write's
own transaction (``taskflow_sql._Connection.fence``); on PostgreSQL and
MySQL that read locks the logbook's row for share until the write commits,
so a claim, which writes that row, waits for the write or the write sees
the claim: no write of the old run lands after a claim. SQLite takes its
write lock only at the write (pysqlite opens the transaction there), and
TaskFlow's directory and ZooKeeper backends have no transactions: there a
resume that claims the run between one thread's check and its write lets
that one write land after the claim, at most one write per thread of the
old run (that thread's next write is refused). The resume writes again
every task it runs or reverts, which replaces such a write; the run's state
and outcomes (the logbook's metadata) are the resume's own.
"""

from typing import Any

from oslo_log import log as logging

from nova_migrate_flows import exceptions
from nova_migrate_flows.engine import book_writes

LOG = logging.getLogger(__name__)


def token_of(book: Any) -> str:
    """The owner token a run's logbook holds."""
    token: str = (book.meta.get("owner") or {})["token"]
    return token


class FencedBackend:
    """A persistence backend whose connections write the logbook
    ``run_id`` (its flows, their atoms) only while it holds ``token``.

    Every other attribute is the backend's own.
    """

    def __init__(self, backend: Any, run_id: str, token: str):
        self._backend = backend
        self._run_id = run_id
        self._token = token

    def get_connection(self) -> "FencedConnection":
        return FencedConnection(self._backend.get_connection(),
                                self._run_id, self._token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class FencedConnection:
    """A backend connection that checks the run's owner before it writes."""

    def __init__(self, connection: Any, run_id: str, token: str):
        self._connection = connection
        self._run_id = run_id
        self._token = token
        # Our SQL backend checks inside each write's own transaction.
        fence = getattr(connection, "fence", None)
        self._checked_inside = fence is not None
        if fence is not None:
            fence(run_id, self._check_meta)

    def _check(self) -> None:
        # Our SQL backend reads the logbook's metadata alone; TaskFlow's
        # other backends read the logbook without its flows.
        read_meta = getattr(self._connection, "logbook_meta", None)
        if read_meta is not None:
            meta = read_meta(self._run_id)
        else:
            meta = self._connection.get_logbook(self._run_id, lazy=True).meta
        self._check_meta(meta)

    def _check_outside(self) -> None:
        """Check before a write the connection does not check itself."""
        if not self._checked_inside:
            self._check()

    def _check_meta(self, meta: dict[str, Any] | None) -> None:
        holder = (meta or {}).get("owner") or {}
        if holder.get("token") != self._token:
            LOG.error("Run %s was resumed by another process (host %s, pid "
                      "%s): this process writes nothing more to its record",
                      self._run_id, holder.get("host"), holder.get("pid"))
            raise exceptions.RunTakenOver(self._run_id, holder)

    def save_logbook(self, book: Any) -> Any:
        self._check()
        return self._connection.save_logbook(book)

    def add_flow_detail(self, book: Any, detail: Any) -> None:
        self._check_outside()
        book_writes.add_flow_detail(self._connection, book, detail)

    def save_logbook_meta(self, book: Any) -> None:
        self._check_outside()
        book_writes.save_meta(self._connection, book)

    def update_flow_details(self, flow_detail: Any, *args: Any,
                            **kwargs: Any) -> Any:
        self._check_outside()
        return self._connection.update_flow_details(flow_detail, *args,
                                                    **kwargs)

    def update_atom_details(self, atom_detail: Any, *args: Any,
                            **kwargs: Any) -> Any:
        self._check_outside()
        return self._connection.update_atom_details(atom_detail, *args,
                                                    **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)
