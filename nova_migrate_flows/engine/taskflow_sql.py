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
"""The one place that leans on internals of TaskFlow's SQL backend.

:class:`SharedTablesBackend` is TaskFlow's
``taskflow.persistence.backends.impl_sqlalchemy.SQLAlchemyBackend`` whose
connections share ONE set of table definitions and the engine it was given
(which it owns, and disposes of on ``close()``). The stock backend builds
the tables again in every ``Connection.__init__``, and TaskFlow asks for a
connection per write: that rebuild, and SQLAlchemy's statement cache for
every new table object, are what made it slow and growing. Its public API
offers no way to share them, so this module relies on the following
internals of TaskFlow (checked, one by one and with a round trip through
a SQLite file, by ``tests/unit/engine/test_taskflow_sql.py``, which names
the internal that changed when one does):

``impl_sqlalchemy.SQLAlchemyBackend.__init__(conf, engine=None)``
    Takes a ready engine: ours, pooled (see
    :func:`nova_migrate_flows.engine.persistence.make_engine`).
``SQLAlchemyBackend._owns_engine``
    Set to true after ``__init__``, so that ``close()`` disposes of the
    engine given (TaskFlow assumes a given engine is the caller's).
``SQLAlchemyBackend._upgrade_lock``, ``._validated``, ``._max_retries``
    Read by :meth:`SharedTablesBackend.get_connection`, which does what the
    stock ``get_connection`` does with them but hands out a
    :class:`_Connection`.
``impl_sqlalchemy.Connection`` and the attributes its methods read
    ``_backend``, ``_upgrade_lock``, ``_engine``, ``_metadata`` (the
    ``MetaData`` that ``upgrade()`` creates on SQLite), ``_tables`` (every
    query) and ``_converter``: :class:`_Connection` sets them from the
    backend instead of calling ``Connection.__init__``, which builds new
    tables.
The ``logbooks`` table's ``uuid``, ``meta`` (JSON), ``updated_at`` columns
    Read alone by :meth:`_Connection.logbook_meta` (``meta``), written
    alone by :meth:`_Connection.save_logbook_meta`.
``impl_sqlalchemy.Connection._update_atom_details(conn, ad, e_ad)``
    Merges ``ad`` into the stored ``e_ad`` and writes it: the stock
    ``save_logbook`` calls it (through ``_update_flow_details``) for every
    atom it writes; :class:`_Connection` overrides it to write with a
    statement built once.
The ``atomdetails`` and ``flowdetails`` tables
    Have a column for each key of ``AtomDetail.to_dict()`` and
    ``FlowDetail.to_dict()`` (the stock writes assume it too), and
    ``atomdetails`` a ``parent_uuid``:
    :meth:`_Connection.update_atom_details` and
    :meth:`_Connection.update_flow_details`, which replace the stock
    methods, write them with statements built once.
``impl_sqlalchemy.Connection._insert_atom_details(conn, ad, parent_uuid)``
    Inserts an atom detail of a flow:
    :meth:`_Connection.update_flow_details` inserts a flow's new atoms
    with it, as the stock method does.
``impl_sqlalchemy.Connection._insert_flow_details(conn, fd, parent_uuid)``
    Inserts a flow detail and its atoms in a transaction: what
    :meth:`_Connection.add_flow_detail` does, without ``save_logbook``'s
    reading and writing of the book's other flows.
``impl_sqlalchemy._Alchemist(tables)``
    The private converter between rows and TaskFlow's models that each
    connection holds as ``_converter``.
``impl_sqlalchemy.Connection.validate(max_retries=...)``
    Called once per backend, as the stock ``get_connection`` does.
``taskflow.persistence.backends.sqlalchemy.tables.fetch(metadata)``
    Builds the ``logbooks``, ``flowdetails`` and ``atomdetails`` tables on
    the given ``MetaData``: done once per backend here.

``taskflow.persistence.backends.sqlalchemy.migration``
    Used by ``upgrade()`` on databases other than SQLite only, through its
    module attribute ``migration``: imported lazily (on first use) here.

Nothing else in the project imports ``impl_sqlalchemy`` or ``tables``.
"""

import contextlib
import importlib.util
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from taskflow import exceptions as tf_exc


def _import_on_first_use(name: str) -> None:
    """Have module ``name`` imported when it is first used, not now."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    # ``from package import name`` then takes it from the package without
    # looking at it (which would import it).
    package, _, attribute = name.rpartition(".")
    setattr(sys.modules[package], attribute, module)


# TaskFlow's SQL backend imports its schema migrations, and with them
# alembic (0.17 s), for PostgreSQL and MySQL databases only: on SQLite its
# upgrade() creates the tables directly. Imported when a migration runs.
_import_on_first_use("taskflow.persistence.backends.sqlalchemy.migration")

# TaskFlow's SQL backend imports eventlet when it is installed (Nova and
# Mistral bring it) only to know whether green threads could be used; they
# never are here, so eventlet's deprecation warning is not for our users.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    from taskflow.persistence.backends import impl_sqlalchemy
    from taskflow.persistence.backends.sqlalchemy import tables as tf_tables


class _Connection(impl_sqlalchemy.Connection):
    """A connection that shares its backend's table definitions."""

    def __init__(self, backend: "SharedTablesBackend",
                 upgrade_lock: threading.Lock):
        # Not Connection.__init__: it would build the tables again.
        self._backend = backend
        self._upgrade_lock = upgrade_lock
        self._engine = backend.engine
        self._metadata = backend.metadata
        self._tables = backend.tables
        self._converter = impl_sqlalchemy._Alchemist(self._tables)

    def logbook_meta(self, book_uuid: str) -> dict[str, Any]:
        """The metadata of logbook ``book_uuid``, and nothing else of it:
        one column of one row (``get_logbook(lazy=True)`` reads the whole
        row and builds a logbook of it: three times as long). Fencing reads
        it before every write (:mod:`nova_migrate_flows.engine.fencing`).
        """
        try:
            with self._engine.connect() as conn:
                row = conn.execute(self._backend.meta_query,
                                   {"uuid": book_uuid}).first()
        except sa.exc.SQLAlchemyError as exc:
            raise tf_exc.StorageFailure(
                f"Failed reading the metadata of logbook '{book_uuid}'"
            ) from exc
        if row is None:
            raise tf_exc.NotFound(f"No logbook found with uuid '{book_uuid}'")
        meta: dict[str, Any] = row[0] or {}
        return meta

    #: Set by :meth:`fence`: the logbook whose metadata each write of
    #: this connection reads first, and the check it is given to.
    _fence: tuple[str, Callable[[dict[str, Any]], None]] | None = None

    def fence(self, book_uuid: str,
              check: Callable[[dict[str, Any]], None]) -> None:
        """Have each write of this connection (:meth:`update_atom_details`,
        :meth:`update_flow_details`, :meth:`add_flow_detail`,
        :meth:`save_logbook_meta`) first read the metadata of logbook
        ``book_uuid`` in its own transaction and give it to ``check``,
        which raises to stop the write. On PostgreSQL and MySQL the read
        locks the logbook's row for share until the write commits: a claim
        of the run (which writes that row) waits for the write, or the
        write sees the claim."""
        self._fence = (book_uuid, check)

    @contextlib.contextmanager
    def _writing(self, of_logbook: bool = False) -> Iterator[Any]:
        """A transaction for a write, checked by the fence if any; one
        that writes the logbook's own row (``of_logbook``) locks it for
        update at once: two such writes holding it for share would each
        wait for the other."""
        with self._engine.begin() as conn:
            if self._fence is not None:
                book_uuid, check = self._fence
                query = (self._backend.fence_update_query if of_logbook
                         else self._backend.fence_query)
                row = conn.execute(query, {"uuid": book_uuid}).first()
                if row is None:
                    raise tf_exc.NotFound(
                        f"No logbook found with uuid '{book_uuid}'")
                check(row[0] or {})
            yield conn

    def update_atom_details(self, atom_detail: Any) -> Any:
        """Write ``atom_detail`` over its stored row: one UPDATE.

        The stock method reads the stored atom, merges ``atom_detail``
        into it and writes the result; a merge takes every field of the
        detail given (``AtomDetail.merge``), so the row written is the same
        without the read. Its statements, built for every write, also had
        SQLAlchemy compute their cache keys again each time; this one is
        built once per backend. Answers the detail given, as TaskFlow's
        in-memory backend does (its storage copies the answer into its own
        detail).
        """
        try:
            with self._writing() as conn:
                written = conn.execute(
                    self._backend.atom_update,
                    dict(atom_detail.to_dict(), match_uuid=atom_detail.uuid))
        except sa.exc.SQLAlchemyError as exc:
            raise tf_exc.StorageFailure(
                f"Failed updating atom details with uuid "
                f"'{atom_detail.uuid}'"
            ) from exc
        if written.rowcount == 0:
            raise tf_exc.NotFound(
                f"No atom details found with uuid '{atom_detail.uuid}'")
        return atom_detail

    def update_flow_details(self, flow_detail: Any) -> Any:
        """Write the row of ``flow_detail`` and insert those of its atoms
        that are not stored yet.

        The stock method reads the flow and every atom of it back and
        writes them all again, on every change of the flow's state. An
        atom stored already is written by ``update_atom_details`` whenever
        TaskFlow's storage changes it (its own copy changes only once that
        write succeeded), so writing it again wrote what the row held.
        Answers the detail given.
        """
        try:
            with self._writing() as conn:
                written = conn.execute(
                    self._backend.flow_update,
                    dict(flow_detail.to_dict(), match_uuid=flow_detail.uuid))
                if written.rowcount == 0:
                    raise tf_exc.NotFound(
                        f"No flow details found with uuid "
                        f"'{flow_detail.uuid}'")
                stored = set(conn.execute(
                    self._backend.flow_atoms_query,
                    {"match_uuid": flow_detail.uuid}).scalars())
                for atom_detail in flow_detail:
                    if atom_detail.uuid not in stored:
                        self._insert_atom_details(conn, atom_detail,
                                                  flow_detail.uuid)
        except sa.exc.SQLAlchemyError as exc:
            raise tf_exc.StorageFailure(
                f"Failed updating flow details with uuid "
                f"'{flow_detail.uuid}'"
            ) from exc
        return flow_detail

    def _update_atom_details(self, conn: Any, ad: Any, e_ad: Any) -> None:
        # Called by the stock save_logbook for every atom it writes.
        e_ad.merge(ad)
        conn.execute(self._backend.atom_update,
                     dict(e_ad.to_dict(), match_uuid=e_ad.uuid))

    def add_flow_detail(self, book: Any, flow_detail: Any) -> None:
        """Insert ``flow_detail`` and its atoms into logbook ``book``
        (saved before), in one transaction, and nothing else
        (``save_logbook`` reads every flow and atom of the book back and
        writes them all again; see
        :mod:`nova_migrate_flows.engine.book_writes`)."""
        try:
            with self._writing() as conn:
                self._insert_flow_details(conn, flow_detail, book.uuid)
        except sa.exc.SQLAlchemyError as exc:
            raise tf_exc.StorageFailure(
                f"Failed adding flow detail '{flow_detail.uuid}' to logbook "
                f"'{book.uuid}'"
            ) from exc

    def save_logbook_meta(self, book: Any) -> None:
        """Write the metadata (and update time) of logbook ``book``, and
        nothing of its flows."""
        logbooks = self._tables.logbooks
        try:
            with self._writing(of_logbook=True) as conn:
                result = conn.execute(
                    sa.update(logbooks)
                    .where(logbooks.c.uuid == book.uuid)
                    .values(meta=book.meta, updated_at=book.updated_at))
        except sa.exc.SQLAlchemyError as exc:
            raise tf_exc.StorageFailure(
                f"Failed saving the metadata of logbook '{book.uuid}'"
            ) from exc
        if result.rowcount == 0:
            raise tf_exc.NotFound(f"No logbook found with uuid '{book.uuid}'")


class SharedTablesBackend(impl_sqlalchemy.SQLAlchemyBackend):
    """TaskFlow's SQLAlchemy backend on ``engine``, with tables built once.

    ``conf`` is TaskFlow's backend configuration (``{"connection": url,
    ...}``); the backend owns ``engine`` and disposes of it on ``close()``.
    """

    def __init__(self, conf: dict[str, Any], engine: sa.engine.Engine):
        super().__init__(conf, engine=engine)
        self._owns_engine = True
        self.metadata = sa.MetaData()
        self.tables = tf_tables.fetch(self.metadata)
        #: The query of one logbook's metadata
        #: (:meth:`_Connection.logbook_meta`), built once: built for every
        #: read, it made the read 2.7 times as long.
        logbooks = self.tables.logbooks
        self.meta_query = sa.select(logbooks.c.meta).where(
            logbooks.c.uuid == sa.bindparam("uuid"))
        #: The same read, locking the row for share where the database
        #: can (:meth:`_Connection.fence`; SQLite renders no lock).
        self.fence_query = self.meta_query.with_for_update(read=True)
        self.fence_update_query = self.meta_query.with_for_update()
        #: The writes of one atom detail and of one flow detail, and the
        #: ids of a flow's stored atoms (``update_atom_details`` and
        #: ``update_flow_details`` of :class:`_Connection`);
        #: a write sets the columns its parameters name.
        atoms = self.tables.atomdetails
        flows = self.tables.flowdetails
        self.atom_update = sa.update(atoms).where(
            atoms.c.uuid == sa.bindparam("match_uuid"))
        self.flow_update = sa.update(flows).where(
            flows.c.uuid == sa.bindparam("match_uuid"))
        self.flow_atoms_query = sa.select(atoms.c.uuid).where(
            atoms.c.parent_uuid == sa.bindparam("match_uuid"))

    def get_connection(self) -> _Connection:
        conn = _Connection(self, self._upgrade_lock)
        if not self._validated:  # type: ignore[has-type]
            conn.validate(max_retries=self._max_retries)
            self._validated = True
        return conn
