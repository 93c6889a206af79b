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
"""The sandbox's Nova databases: API, cell0 and cell1, in SQLite files.

They are configured the way a real deployment configures them:
``[api_database] connection`` is the API database, ``[database]
connection`` is cell1's (the services without a cell in their context use
it) and each cell mapping names its own database. Nova's test fixture
``CellDatabases`` instead swaps one global database under a
reader-writer lock held across whole ``target_cell`` blocks; with the
write lock below, that deadlocked the sandbox under concurrent requests
(a thread holding the write lock waited for a reader that waited for it).

SQLite allows one writer at a time, and a transaction that reads first and
writes later fails rather than waits when another write came in between:
:class:`OneWriterAtATime` serialises every writer transaction of the
process (Nova's and Placement's) under one re-entrant lock, which cannot
deadlock with itself the way one lock per database can.

A writer transaction can still meet "database is locked" (SQLite answers
it at once, without the busy timeout, to a transaction whose first write
finds the database changed since its first read): a cold migration failed
that way in Nova's conductor, once in a CI run, leaving the server in a
resize task state for good. :class:`LockedIsDeadlock` has oslo.db report
it as the deadlock MySQL and PostgreSQL report for a conflicting write,
which Nova and Placement retry where they retry deadlocks (the instance
actions, the allocations, the instance updates).

oslo.db opens a new SQLite connection for every transaction. When the last
connection to a database in write-ahead-log mode closes, it locks the
database while it removes the log, and a connection opening meanwhile fails
at once with "database is locked" (no busy timeout applies):
:class:`KeepOpen` holds one idle connection to each database for as long
as the sandbox runs, so that never happens.

This module imports Nova: only the sandbox server process may import it.
"""

import contextlib
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import fixtures
from nova.db import migration
from nova.db.api import api as api_db_api
from nova.db.main import api as main_db_api
from oslo_config import cfg
from oslo_db import exception as db_exception
from oslo_db.sqlalchemy import enginefacade, exc_filters
from sqlalchemy import exc as sqla_exc

CONF = cfg.CONF

CELL_NAMES = ("cell0", "cell1")


class OneWriterAtATime(fixtures.Fixture):
    """Serialise the writer transactions of every database in the process."""

    def _setUp(self) -> None:
        lock = threading.RLock()
        real_scope = enginefacade._TransactionContextManager._transaction_scope

        @contextlib.contextmanager
        def transaction_scope(manager: Any, context: Any) -> Iterator[Any]:
            if manager._mode is enginefacade._WRITER:
                with lock, real_scope(manager, context) as resource:
                    yield resource
            else:
                with real_scope(manager, context) as resource:
                    yield resource

        self.useFixture(fixtures.MonkeyPatch(
            "oslo_db.sqlalchemy.enginefacade._TransactionContextManager."
            "_transaction_scope", transaction_scope))


class LockedIsDeadlock(fixtures.Fixture):
    """Report SQLite's "database is locked" as oslo.db's ``DBDeadlock``."""

    def _setUp(self) -> None:
        def deadlock(error: Any, match: Any, engine_name: str,
                     is_disconnect: bool) -> None:
            raise db_exception.DBDeadlock(error)

        registered = exc_filters._registry["sqlite"][
            sqla_exc.OperationalError]
        entry = (deadlock, re.compile(r".*database is locked", re.DOTALL))
        registered.insert(0, entry)
        self.addCleanup(registered.remove, entry)


class KeepOpen(fixtures.Fixture):
    """Hold an idle connection to a SQLite database while the fixture lives.

    :param url: a ``sqlite:///PATH`` URL; for any other (``sqlite://``, an
        in-memory database, as Placement 8's test fixture uses) the
        fixture does nothing
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        prefix = "sqlite:///"
        self.path = url[len(prefix):] if url.startswith(prefix) else ""

    def _setUp(self) -> None:
        if not self.path:
            return
        connection = sqlite3.connect(self.path, check_same_thread=False)
        self.addCleanup(connection.close)


class SandboxDatabases(fixtures.Fixture):
    """Create, configure and migrate the API, cell0 and cell1 databases.

    :param directory: where the SQLite files go
    :param override: ``override(group=..., **options)`` sets Nova options
        for as long as the sandbox lives
    """

    def __init__(self, directory: str, override: Any) -> None:
        super().__init__()
        self.directory = directory
        self._override = override
        #: ``{"api" | "cell0" | "cell1": SQLAlchemy URL}``
        self.urls: dict[str, str] = {}

    def _setUp(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        paths = {name: os.path.join(self.directory, f"{name}.sqlite")
                 for name in ("api",) + CELL_NAMES}
        self.urls = {name: f"sqlite:///{path}"
                     for name, path in paths.items()}
        _create_wal_database(paths["api"])
        _create_wal_database(paths["cell1"])
        self.useFixture(KeepOpen(self.urls["api"]))
        self.useFixture(KeepOpen(self.urls["cell1"]))
        self._override(connection=self.urls["api"], group="api_database")
        self._override(connection=self.urls["cell1"], group="database")
        api_db_api.configure(CONF)
        main_db_api.configure(CONF)
        self.useFixture(OneWriterAtATime())
        self.useFixture(LockedIsDeadlock())
        self.addCleanup(self._dispose)
        migration.db_sync(database="api")
        migration.db_sync(database="main")
        # cell0 starts as a copy of the freshly migrated cell1.
        _checkpoint(paths["cell1"])
        shutil.copyfile(paths["cell1"], paths["cell0"])
        self.useFixture(KeepOpen(self.urls["cell0"]))

    @staticmethod
    def _dispose() -> None:
        api_db_api.get_engine().dispose()
        main_db_api.get_engine().dispose()


def _create_wal_database(path: str) -> None:
    """An empty SQLite file in write-ahead-log mode (readers never wait)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _checkpoint(path: str) -> None:
    """Write the log back into the database file, so that it can be
    copied alone."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
