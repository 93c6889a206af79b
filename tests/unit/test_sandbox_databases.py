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
"""The sandbox's SQLite databases under concurrent writers."""

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exception
from oslo_db.sqlalchemy import enginefacade

from nova_migrate_flows.sandbox import databases


class Context:
    """What oslo.db's enginefacade keeps its transaction on."""


@pytest.fixture
def database(tmp_path: Any) -> Iterator[tuple[Any, sqlite3.Connection]]:
    """A WAL database with one table, an oslo.db transaction context on
    it, and another connection (another process's writer)."""
    path = str(tmp_path / "cell.sqlite")
    databases._create_wal_database(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE actions (id INTEGER)")
    context = enginefacade.transaction_context()
    context.configure(connection=f"sqlite:///{path}")
    yield context, other
    other.close()
    context.writer.get_engine().dispose()


def read_then_write(context: Any, other: sqlite3.Connection,
                    conflict: bool = True) -> None:
    """A writer transaction that reads, then writes; after another writer
    committed in between (``conflict``), SQLite refuses its write at
    once."""
    with context.writer.using(Context()) as session:
        session.execute(sqlalchemy.text("SELECT id FROM actions")).all()
        if conflict:
            other.execute("INSERT INTO actions VALUES (2)")
        session.execute(sqlalchemy.text("INSERT INTO actions VALUES (1)"))


def test_database_is_locked_is_a_deadlock_nova_retries(database):
    context, other = database
    with databases.LockedIsDeadlock():
        with pytest.raises(db_exception.DBDeadlock, match="is locked"):
            read_then_write(context, other)


def test_a_write_retried_on_deadlock_goes_through(database):
    """As Nova's instance actions are written (``wrap_db_retry``)."""
    context, other = database
    attempts: list[int] = []

    @oslo_db_api.wrap_db_retry(max_retries=3, retry_interval=0.01,
                               retry_on_deadlock=True)
    def write() -> None:
        attempts.append(1)
        read_then_write(context, other, conflict=len(attempts) == 1)

    with databases.LockedIsDeadlock():
        write()
    assert len(attempts) == 2
    rows = other.execute("SELECT id FROM actions ORDER BY id").fetchall()
    assert rows == [(1,), (2,)]


def test_without_the_fixture_oslo_db_raises_sqlite_s_error(database):
    context, other = database
    with databases.LockedIsDeadlock():
        pass
    with pytest.raises(sqlalchemy.exc.OperationalError,
                       match="is locked") as raised:
        read_then_write(context, other)
    assert not isinstance(raised.value, db_exception.DBError)
