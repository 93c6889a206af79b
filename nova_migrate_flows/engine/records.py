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
"""The record of every run: one TaskFlow logbook per run.

A run's logbook holds its request and state in its metadata, and one flow
detail per flow (the preflight, then one per source host, or the one flow
of a single-server operation). ``flows list``, ``flows show`` and
``resume`` read them; conductors share them. They read a whole logbook on
any backend: a SQL backend reads in a transaction; on TaskFlow's directory
backend, which has none, a read waits for the writes of its own process and
is tried again when it meets a logbook another process is writing.
"""

import contextlib
import datetime
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from taskflow import exceptions as tf_exc
from taskflow.persistence import models as tf_models

import nova_migrate_flows
from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.engine import book_writes

#: The layout of the records this version writes. 2: server outcomes say
#: with ``stopped`` whether the run's stop kept a server from moving (layout
#: 1 said so only in the reason's words), kinds of move are plugins. 3: a
#: server's verifications run in one atom, ``verify[SERVER]`` (layout 2 had
#: one atom per verification: a resume would run them all again).
LAYOUT = 3

#: How long a logbook's name may be: TaskFlow's SQL tables keep 255
#: characters (``NAME_LENGTH``).
TITLE_LENGTH = 255

#: How many times a read is tried, and how long to wait in between, when
#: it finds part of a logbook missing. SQL backends read in a transaction;
#: TaskFlow's directory backend lists a flow or a task before its file is
#: written, and another process may read in between.
READ_ATTEMPTS = 5
READ_RETRY_DELAY = 0.05

_T = TypeVar("_T")


class Records:
    """Logbooks of runs in one persistence backend."""

    def __init__(self, backend: Any):
        self.backend = backend

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with contextlib.closing(self.backend.get_connection()) as conn:
            yield conn

    def _read(self, read: Callable[[Any], _T]) -> _T:
        """``read(connection)``, never amid a write of this process, and
        again if it met a logbook half written by another one."""
        attempt = 1
        while True:
            try:
                with self._connection() as conn, _read_lock(self.backend):
                    return read(conn)
            except tf_exc.NotFound:
                if attempt >= READ_ATTEMPTS:
                    raise
            attempt += 1
            time.sleep(READ_RETRY_DELAY)

    def create(self, run_id: str, request: dict[str, Any],
               cloud: dict[str, Any] | None = None) -> Any:
        """Record a new run; ``cloud`` names the cloud it acts on."""
        book = tf_models.LogBook(_title(request), uuid=run_id)
        book.meta = {
            "layout": LAYOUT,
            "version": nova_migrate_flows.__version__,
            "request": request,
            "cloud": cloud,
            "state": constants.RunState.RUNNING,
            "started_at": _now(),
            "owner": owner(),
        }
        with self._connection() as conn:
            conn.save_logbook(book)
        return book

    def get(self, run_id: str) -> Any:
        try:
            return self._read(lambda conn: conn.get_logbook(run_id))
        except tf_exc.NotFound:
            raise exceptions.InvalidInput(
                f"run {run_id}: no such run; see 'nova-migrate-flow "
                "flows list'"
            ) from None

    def list(self) -> list[Any]:
        books = self._read(lambda conn: list(conn.get_logbooks()))
        return sorted(books, key=lambda b: b.meta.get("started_at") or "",
                      reverse=True)

    def update(self, book: Any, **meta: Any) -> None:
        book.meta.update(meta)
        with self._connection() as conn:
            book_writes.save_meta(conn, book)

    def check_layout(self, book: Any) -> None:
        """Refuse a run that another layout of the records describes: a
        resume would read it wrong."""
        layout = book.meta.get("layout", 1)
        if layout == LAYOUT:
            return
        version = book.meta.get("version")
        recorded_by = (f"nova-migrate-flows {version}" if version else
                       "a nova-migrate-flows older than record layouts")
        raise exceptions.InvalidInput(
            f"run {book.uuid} was recorded by {recorded_by} (record layout "
            f"{layout}); this version "
            f"({nova_migrate_flows.__version__}, layout {LAYOUT}) cannot "
            "resume it: finish it with the version that recorded it, or "
            "start the operation again"
        )

    def claim(self, book: Any) -> None:
        """Make this process the owner of a run it resumes, with a new
        owner token: the process that ran it before writes nothing more to
        it (:mod:`nova_migrate_flows.engine.fencing`)."""
        holder = book.meta.get("owner") or {}
        if (
            book.meta.get("state") == constants.RunState.RUNNING
            and holder.get("host") == socket.gethostname()
            and holder.get("pid") != os.getpid()
            and _alive(holder.get("pid"))
        ):
            raise exceptions.InvalidInput(
                f"run {book.uuid} is still running (pid {holder['pid']}); "
                "stop it first"
            )
        self.update(book, state=constants.RunState.RUNNING, owner=owner(),
                    resumed_at=_now())


def _read_lock(backend: Any) -> contextlib.AbstractContextManager[Any]:
    """The read side of a backend's in-process reader-writer lock, if it
    has one: TaskFlow's directory and memory backends take the write side
    (``backend.lock.write_lock``) for every write, but the directory
    backend reads files without it, and would read one half written by
    another thread. SQL backends have no such lock: they need none."""
    read_lock = getattr(getattr(backend, "lock", None), "read_lock", None)
    if read_lock is None:
        return contextlib.nullcontext()
    return read_lock()


def flow_detail(book: Any, name: str) -> Any | None:
    """The flow detail called ``name`` in ``book``, if any."""
    if book is None:
        return None
    for detail in book:
        if detail.name == name:
            return detail
    return None


def describe(book: Any) -> dict[str, Any]:
    """A run as ``flows show`` reports it: its flows and every server."""
    atoms: dict[str, Any] = {}
    flows = []
    for detail in book:
        flows.append({"name": detail.name, "state": detail.state})
        for atom in detail:
            atoms[atom.name] = atom
    plan = _plan(atoms)
    servers = []
    for server_id, entry in (plan or {}).items():
        outcome_atom = atoms.get(constants.server_key("outcome", server_id))
        if outcome_atom is not None and outcome_atom.state == "SUCCESS":
            row = dict(outcome_atom.results)
        else:
            row = {
                "server": server_id,
                "name": entry["server"].get("name"),
                "source": entry["server"].get("host"),
                "destination": None,
                "action": entry["action"],
                "status": _progress(atoms, server_id, entry),
                "reason": entry.get("skip_reason") or "",
            }
        servers.append(row)
    return {
        "run_id": book.uuid,
        "name": book.name,
        "state": book.meta.get("state"),
        "started_at": book.meta.get("started_at"),
        "request": book.meta.get("request"),
        "cloud": book.meta.get("cloud"),
        "summary": book.meta.get("summary"),
        "flows": flows,
        "servers": servers,
        # A roll's steps (the ids of its enter and exit runs) and hosts.
        "steps": {key: step.get("run_id") for key, step in
                  (book.meta.get("steps") or {}).items()},
        "hosts": book.meta.get("hosts") or [],
    }


def recorded_plan(book: Any) -> dict[str, Any]:
    """The plan a run recorded (empty before its preflight ended)."""
    return _plan({atom.name: atom for detail in book for atom in detail})


def _plan(atoms: dict[str, Any]) -> dict[str, Any]:
    plan_atom = atoms.get(constants.BUILD_PLAN)
    if plan_atom is None or plan_atom.state != "SUCCESS":
        return {}
    return dict(plan_atom.results or {})


def _progress(atoms: dict[str, Any], server_id: str,
              entry: dict[str, Any]) -> str:
    """How far an unfinished server got, from its atoms' states."""
    if entry["action"] == "skip":
        return "skipped"
    steps = [
        (constants.server_key("confirm", server_id), "confirming"),
        (constants.server_key("restart", server_id), "restarting"),
        (constants.wait_atom(entry["action"], server_id), "moving"),
        (constants.start_atom(entry["action"], server_id), "starting"),
    ]
    for name, label in steps:
        atom = atoms.get(name)
        if atom is not None and atom.state in ("RUNNING", "SUCCESS",
                                                "REVERTING", "FAILURE"):
            if atom.state == "SUCCESS" and label == "moving":
                return "verifying"
            return label
    return "pending"


def owner() -> dict[str, Any]:
    """A new claim of a run by this process: its host, its pid, and a token
    no other claim has (see :mod:`nova_migrate_flows.engine.fencing`)."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "token": uuid.uuid4().hex}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _title(request: dict[str, Any]) -> str:
    """The run's logbook name: the operation and what it moves, as many of
    them as TaskFlow's SQL tables keep (:data:`TITLE_LENGTH`; PostgreSQL
    and MySQL refuse more), then how many more."""
    operation = request["operation"]
    items = list(request.get("hosts") or request.get("servers") or ())
    for shown in range(len(items), -1, -1):
        more = len(items) - shown
        title = " ".join([operation, *items[:shown]]) + (
            f" and {more} more" if more else "")
        if len(title) <= TITLE_LENGTH:
            return title
    return operation[:TITLE_LENGTH]
