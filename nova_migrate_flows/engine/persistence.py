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
"""Where runs are recorded: a TaskFlow persistence backend, chosen by URL.

``[persistence] connection`` (default: a SQLite file under ``[DEFAULT]
state_dir``) names the backend by its URL scheme:

``sqlite``, ``postgresql``, ``mysql`` (with any ``+driver``)
    :class:`FastSQLBackend`. The stock TaskFlow SQLAlchemy backend builds
    its table definitions again for every connection it hands out (and
    TaskFlow asks for one per write), and opens a new SQLite connection each
    time: 22-42 ms per task here, and memory that grows with the flow as
    SQLAlchemy caches statements for every new table object.
    :class:`FastSQLBackend` builds the tables once, keeps a pool of
    connections, and runs SQLite in WAL mode with ``synchronous=NORMAL``
    (durable against a crash of this process; a power cut may lose the last
    transactions, never corrupt the file). What it needs of TaskFlow's
    internals is in :mod:`nova_migrate_flows.engine.taskflow_sql`, and
    nowhere else.
Any other scheme TaskFlow has a persistence backend for
    (``memory``, ``dir`` and ``file``, ``zookeeper``, or a plugin's):
    fetched the TaskFlow way, ``taskflow.persistence.backends.fetch``, with
    the URL as ``connection`` (plus the directory of ``dir:///path``, and
    the hosts and node of ``zookeeper://host:port,.../path``).

Every backend has its schema upgraded (tables or directories created)
before it is returned. An unknown scheme is a configuration error.

Nothing secret is ever written: flow details hold ids, names, states and
the plan, never credentials or tokens.
"""

import contextlib
import importlib.metadata
import os
import re
import urllib.parse
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from oslo_log import log as logging
from sqlalchemy import pool as sa_pool
from taskflow.persistence import backends as tf_backends

from nova_migrate_flows import exceptions
from nova_migrate_flows.engine import taskflow_sql

LOG = logging.getLogger(__name__)

DB_NAME = "nova-migrate-flows.sqlite"

#: URL schemes (before any ``+driver``) served by :class:`FastSQLBackend`:
#: those TaskFlow serves with its own SQLAlchemy backend.
SQL_SCHEMES = ("mysql", "postgresql", "sqlite")

#: Schemes whose URL path is a directory (TaskFlow's ``impl_dir``).
DIR_SCHEMES = ("dir", "file")

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


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


def scheme_of(url: str) -> str:
    """The backend a URL names: its scheme, lower case, without any
    ``+driver`` (``postgresql+psycopg2://...`` -> ``postgresql``); ``""``
    when it has none."""
    match = _SCHEME.match(url.strip())
    if match is None:
        return ""
    return match.group(1).lower().split("+", 1)[0]


def taskflow_schemes() -> list[str]:
    """The schemes TaskFlow has a persistence backend for (its
    ``taskflow.persistence`` entry points, plugins' included)."""
    return sorted({entry.name for entry in importlib.metadata.entry_points(
        group=tf_backends.BACKEND_NAMESPACE)})


def accepted_schemes() -> list[str]:
    return sorted(set(SQL_SCHEMES) | set(taskflow_schemes()))


def backend_from_conf(conf: cfg.ConfigOpts) -> Any:
    """The configured persistence backend, with its schema in place.

    A :class:`FastSQLBackend` for SQL URLs, otherwise the TaskFlow backend
    that ``taskflow.persistence.backends.fetch`` returns for the URL.
    """
    url = conf.persistence.connection or default_url(conf)
    scheme = scheme_of(url)
    if scheme in SQL_SCHEMES:
        return _sql_backend(url)
    if scheme in taskflow_schemes():
        return _taskflow_backend(scheme, url)
    # Never the URL itself: it may hold a password.
    what = f"unknown scheme '{scheme}'" if scheme else "not a URL (no scheme)"
    raise exceptions.ConfigurationError(
        f"[persistence] connection: {what}; accepted schemes: "
        f"{', '.join(accepted_schemes())}"
    )


def _sql_backend(url: str) -> FastSQLBackend:
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


def fetch_conf(scheme: str, url: str) -> dict[str, Any]:
    """What ``taskflow.persistence.backends.fetch`` is given for ``url``.

    TaskFlow takes the scheme and the query parameters from the URL
    (``?max_cache_size=100``, ``?timeout=10``, ...) but neither its path nor
    a list of hosts: ``dir:///path`` gets ``path``, and
    ``zookeeper://host:port,host:port/node`` gets ``hosts`` and ``path``
    (and leaves TaskFlow a URL without hosts, whose parser reads only one).
    """
    parts = urllib.parse.urlsplit(url)
    if scheme in DIR_SCHEMES:
        if parts.netloc or not parts.path:
            raise exceptions.ConfigurationError(
                f"[persistence] connection: a {scheme} URL names a "
                f"directory by its absolute path, as in "
                f"{scheme}:///var/lib/nova-migrate-flows/runs"
            )
        return {"connection": url,
                "path": urllib.parse.unquote(parts.path)}
    if scheme == "zookeeper":
        if "@" in parts.netloc:
            raise exceptions.ConfigurationError(
                "[persistence] connection: a zookeeper URL takes no user "
                "or password, only host:port[,host:port...]"
            )
        without_hosts = f"{parts.scheme}://{parts.path or '/'}"
        if parts.query:
            without_hosts += f"?{parts.query}"
        found: dict[str, Any] = {"connection": without_hosts}
        if parts.netloc:
            found["hosts"] = parts.netloc
        if parts.path not in ("", "/"):
            found["path"] = parts.path
        return found
    return {"connection": url}


def _taskflow_backend(scheme: str, url: str) -> Any:
    try:
        settings = fetch_conf(scheme, url)
    except ValueError as exc:
        raise exceptions.ConfigurationError(
            f"[persistence] connection: not a {scheme} URL: "
            f"{_first_line(exc)}"
        ) from None
    if scheme in DIR_SCHEMES:
        try:
            os.makedirs(settings["path"], mode=0o700, exist_ok=True)
        except OSError as exc:
            raise exceptions.ConfigurationError(
                f"[persistence] connection: {settings['path']}: cannot "
                f"create it: {exc.strerror}"
            ) from None
    backend = None
    try:
        backend = tf_backends.fetch(settings)
        with contextlib.closing(backend.get_connection()) as connection:
            connection.upgrade()
    except Exception as exc:  # noqa: BLE001 - any backend error means this
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.close()
        raise exceptions.ConfigurationError(
            f"[persistence] connection: cannot open the {scheme} backend "
            f"({type(exc).__name__}: {_why(exc)})"
        ) from None
    LOG.debug("Runs are recorded in a TaskFlow %s backend", scheme)
    return backend


def _why(exc: BaseException) -> str:
    """The first line of ``exc``, and of what caused it when TaskFlow only
    wrapped it (``StorageFailure: Storage backend internal error``), with
    the fix when it is known."""
    why = _first_line(exc)
    cause = exc.__cause__
    if cause is not None:
        why += f": {_first_line(cause)}"
    if "server version" in why:
        # TaskFlow checks the ZooKeeper version with the "envi" four-letter
        # word, which ZooKeeper 3.5 and later refuse unless allowed.
        why += (" (allow the 'envi' command: 4lw.commands.whitelist = envi "
                "in zoo.cfg)")
    return why


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
