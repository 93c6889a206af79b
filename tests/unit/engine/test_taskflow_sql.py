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
"""The TaskFlow internals that ``engine/taskflow_sql.py`` relies on.

One test per internal listed in that module's docstring: each fails with
a message naming the internal when a TaskFlow release changes it, and the
round trip at the end saves and loads a logbook through the fast backend
on a temporary SQLite file. When one fails, adapt ``taskflow_sql.py`` (and
its docstring) to the new TaskFlow, not this test.
"""

import ast
import contextlib
import importlib.metadata
import inspect
import pathlib
import subprocess
import sys
import textwrap
import threading

import pytest
import sqlalchemy as sa
from taskflow import exceptions as tf_exc
from taskflow.persistence import backends as tf_backends
from taskflow.persistence import models
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.persistence.backends.sqlalchemy import tables as tf_tables

import nova_migrate_flows
from nova_migrate_flows.engine import persistence, taskflow_sql

#: The modules of TaskFlow's SQL backend, imported by taskflow_sql alone.
SQL_INTERNALS = ("taskflow.persistence.backends.impl_sqlalchemy",
                 "taskflow.persistence.backends.sqlalchemy")

#: What ``_Connection`` sets instead of calling ``Connection.__init__``.
CONNECTION_ATTRIBUTES = {"_backend", "_upgrade_lock", "_engine", "_metadata",
                         "_tables", "_converter"}
#: What ``SharedTablesBackend.get_connection`` reads, as the stock one does.
GET_CONNECTION_ATTRIBUTES = {"_upgrade_lock", "_validated", "_max_retries"}


def changed(internal, how):
    """Fail, naming the TaskFlow internal that changed."""
    pytest.fail(
        f"TaskFlow changed {internal}: {how}. "
        "nova_migrate_flows/engine/taskflow_sql.py relies on it; adapt it "
        "(and its docstring) to this TaskFlow release.",
        pytrace=False)


def parameters(func):
    return list(inspect.signature(func).parameters)


def self_attributes(func_or_class):
    """The ``self.<name>`` attributes the source of a function or class
    reads or writes, without the methods and properties it defines."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func_or_class)))
    defined = {node.name for node in ast.walk(tree)
               if isinstance(node, ast.FunctionDef)}
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "self"
            } - defined


@pytest.fixture
def url(tmp_path):
    return "sqlite:///" + str(tmp_path / "runs.sqlite")


@pytest.fixture
def backend(url):
    backend = persistence.FastSQLBackend({"connection": url})
    with contextlib.closing(backend.get_connection()) as connection:
        connection.upgrade()
    yield backend
    backend.close()


def test_self_attributes_finds_what_a_method_uses():
    class Toy:
        def __init__(self):
            self._a = 1

        def method(self):
            return self._b + self.method2()

        def method2(self):
            return 0

    assert self_attributes(Toy) == {"_a", "_b"}


def test_the_backend_takes_a_ready_engine():
    found = parameters(impl_sqlalchemy.SQLAlchemyBackend.__init__)
    if found[:3] != ["self", "conf", "engine"]:
        changed("impl_sqlalchemy.SQLAlchemyBackend.__init__",
                f"its parameters are {found}, not (self, conf, engine)")


def test_the_backend_has_the_attributes_get_connection_reads(url):
    engine = sa.create_engine(url)
    stock = impl_sqlalchemy.SQLAlchemyBackend({"connection": url},
                                              engine=engine)
    for name in sorted(GET_CONNECTION_ATTRIBUTES | {"_owns_engine"}):
        if not hasattr(stock, name):
            changed(f"impl_sqlalchemy.SQLAlchemyBackend.{name}",
                    "the backend no longer has it")
    if stock._owns_engine is not False:
        changed("impl_sqlalchemy.SQLAlchemyBackend._owns_engine",
                "it is no longer false for an engine given")
    if not hasattr(stock._upgrade_lock, "acquire"):
        changed("impl_sqlalchemy.SQLAlchemyBackend._upgrade_lock",
                "it is no longer a lock")
    engine.dispose()


def test_stock_get_connection_reads_nothing_more():
    used = self_attributes(impl_sqlalchemy.SQLAlchemyBackend.get_connection)
    if used != GET_CONNECTION_ATTRIBUTES:
        changed("impl_sqlalchemy.SQLAlchemyBackend.get_connection",
                f"it uses {sorted(used)}, not "
                f"{sorted(GET_CONNECTION_ATTRIBUTES)}; "
                "SharedTablesBackend.get_connection replaces it")


def test_close_disposes_of_the_engine_the_backend_owns(url):
    backend = persistence.FastSQLBackend({"connection": url})
    pool = backend.engine.pool

    backend.close()

    if backend.engine.pool is pool:
        changed("impl_sqlalchemy.SQLAlchemyBackend.close / _owns_engine",
                "close() no longer disposes of the engine when "
                "_owns_engine is true")


def test_connection_init_sets_what_our_connection_sets(url):
    engine = sa.create_engine(url)
    stock = impl_sqlalchemy.SQLAlchemyBackend({"connection": url},
                                              engine=engine)
    found = set(vars(impl_sqlalchemy.Connection(
        stock, upgrade_lock=threading.Lock())))
    engine.dispose()
    backend = persistence.FastSQLBackend({"connection": url})
    # Built as get_connection builds it, without validating the engine.
    ours = set(vars(taskflow_sql._Connection(backend, threading.Lock())))
    backend.close()

    assert ours == CONNECTION_ATTRIBUTES
    if found != ours:
        changed("impl_sqlalchemy.Connection.__init__",
                f"it sets {sorted(found)}; taskflow_sql._Connection sets "
                f"{sorted(ours)}")


def test_connection_methods_use_only_what_our_connection_sets():
    used = self_attributes(impl_sqlalchemy.Connection)
    if not used <= CONNECTION_ATTRIBUTES:
        changed("impl_sqlalchemy.Connection",
                f"its methods use {sorted(used - CONNECTION_ATTRIBUTES)}, "
                "which taskflow_sql._Connection does not set")


def test_the_connection_validates_with_max_retries():
    if "max_retries" not in parameters(impl_sqlalchemy.Connection.validate):
        changed("impl_sqlalchemy.Connection.validate",
                "it takes no max_retries")


def test_the_converter_takes_the_tables():
    converter = getattr(impl_sqlalchemy, "_Alchemist", None)
    if converter is None:
        changed("impl_sqlalchemy._Alchemist", "it is gone")
    if parameters(converter.__init__) != ["self", "tables"]:
        changed("impl_sqlalchemy._Alchemist.__init__",
                f"its parameters are {parameters(converter.__init__)}, "
                "not (self, tables)")


def test_tables_fetch_builds_the_three_tables_on_the_metadata():
    if parameters(tf_tables.fetch) != ["metadata"]:
        changed("sqlalchemy.tables.fetch",
                f"its parameters are {parameters(tf_tables.fetch)}, "
                "not (metadata)")
    metadata = sa.MetaData()
    built = tf_tables.fetch(metadata)
    for name in ("logbooks", "flowdetails", "atomdetails"):
        table = getattr(built, name, None)
        if not isinstance(table, sa.Table) or table.metadata is not metadata:
            changed("sqlalchemy.tables.fetch",
                    f"its result has no {name} table on the MetaData given")


def test_taskflow_serves_the_sql_schemes_with_its_sqlalchemy_backend():
    entries = {entry.name: entry.value
               for entry in importlib.metadata.entry_points(
                   group=tf_backends.BACKEND_NAMESPACE)}
    for scheme in persistence.SQL_SCHEMES:
        if entries.get(scheme) != (
                "taskflow.persistence.backends.impl_sqlalchemy:"
                "SQLAlchemyBackend"):
            changed(f"the {scheme!r} persistence entry point",
                    f"it is {entries.get(scheme)!r}, so FastSQLBackend is "
                    "no longer a drop-in for what TaskFlow fetches")


def test_tables_are_built_once_per_backend(url, monkeypatch):
    calls = []
    fetch = tf_tables.fetch
    monkeypatch.setattr(tf_tables, "fetch",
                        lambda metadata: calls.append(metadata) or
                        fetch(metadata))
    backend = persistence.FastSQLBackend({"connection": url})

    for _ in range(5):
        with contextlib.closing(backend.get_connection()) as connection:
            connection.upgrade()
            list(connection.get_logbooks())

    backend.close()
    assert len(calls) == 1


def test_a_logbook_round_trips_through_the_fast_backend(url, backend):
    book = models.LogBook("run", uuid="0b5a2f7e-0000-4000-8000-000000000001")
    book.meta = {"state": "running", "request": {"hosts": ["host1"]}}
    detail = models.FlowDetail("host1", uuid="f1")
    detail.state = "RUNNING"
    atom = models.TaskDetail("live-migrate[s1]", uuid="a1")
    atom.state = "SUCCESS"
    atom.results = {"destination": "host2"}
    detail.add(atom)
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)
    atom.results = {"destination": "host3"}
    with contextlib.closing(backend.get_connection()) as connection:
        connection.update_atom_details(atom)

    # A second backend on the same file: what another process reads.
    other = persistence.FastSQLBackend({"connection": url})
    with contextlib.closing(other.get_connection()) as connection:
        (listed,) = list(connection.get_logbooks())
        loaded = connection.get_logbook(book.uuid)
    other.close()

    assert listed.uuid == loaded.uuid == book.uuid
    assert loaded.meta == book.meta
    (loaded_detail,) = list(loaded)
    assert (loaded_detail.uuid, loaded_detail.name, loaded_detail.state) == (
        "f1", "host1", "RUNNING")
    (loaded_atom,) = list(loaded_detail)
    assert isinstance(loaded_atom, models.TaskDetail)
    assert (loaded_atom.name, loaded_atom.state, loaded_atom.results) == (
        "live-migrate[s1]", "SUCCESS", {"destination": "host3"})


def test_the_metadata_of_a_logbook_is_read_alone(url, backend):
    book = models.LogBook("run", uuid="0b5a2f7e-0000-4000-8000-000000000004")
    book.meta = {"state": "running", "owner": {"token": "t1"}}
    book.add(models.FlowDetail("host1", uuid="f1"))
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)

    with contextlib.closing(backend.get_connection()) as connection:
        assert connection.logbook_meta(book.uuid) == book.meta
        with pytest.raises(tf_exc.NotFound, match="No logbook found"):
            connection.logbook_meta("0b5a2f7e-0000-4000-8000-000000000005")


def calls_on_self(func):
    """The names of the ``self.<name>(...)`` calls in ``func``'s source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    return {node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"}


@pytest.mark.parametrize("method, callee", [
    ("save_logbook", "_update_flow_details"),
    ("_update_flow_details", "_update_atom_details"),
])
def test_stock_writes_of_atoms_go_through_one_private_method(method, callee):
    stock = getattr(impl_sqlalchemy.Connection, method)
    if callee not in calls_on_self(stock):
        changed(f"impl_sqlalchemy.Connection.{method}",
                f"it no longer calls self.{callee}, through which every "
                "atom is written with self._update_atom_details")
    found = parameters(impl_sqlalchemy.Connection._update_atom_details)
    if found != ["self", "conn", "ad", "e_ad"]:
        changed("impl_sqlalchemy.Connection._update_atom_details",
                f"its parameters are {found}, not (self, conn, ad, e_ad)")


@pytest.mark.parametrize("table, detail", [
    ("atomdetails", models.TaskDetail("t", uuid="a")),
    ("atomdetails", models.RetryDetail("r", uuid="b")),
    ("flowdetails", models.FlowDetail("f", uuid="c")),
])
def test_a_detail_has_a_column_for_each_of_its_fields(table, detail):
    columns = set(getattr(tf_tables.fetch(sa.MetaData()), table).c.keys())
    fields = set(detail.to_dict()) | {"parent_uuid"}
    if not fields <= columns:
        changed(f"the {table} table",
                f"it has no column for {sorted(fields - columns)}")


def test_atoms_are_inserted_into_a_flow_by_a_private_method():
    insert = impl_sqlalchemy.Connection._insert_atom_details
    if parameters(insert) != ["self", "conn", "ad", "parent_uuid"]:
        changed("impl_sqlalchemy.Connection._insert_atom_details",
                f"its parameters are {parameters(insert)}, not (self, conn, "
                "ad, parent_uuid)")


def test_a_flow_writes_its_row_and_new_atoms_and_an_atom_itself(
        url, backend):
    book = models.LogBook("run", uuid="0b5a2f7e-0000-4000-8000-000000000009")
    detail = models.FlowDetail("host1", uuid="f9")
    first = models.TaskDetail("live-migrate[s1]", uuid="a9")
    detail.add(first)
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)
    # As TaskFlow's storage does: a new atom joins through the flow, a
    # changed atom is written by itself.
    second = models.RetryDetail("target[s1]", uuid="b9")
    second.state = "PENDING"
    detail.add(second)
    detail.state = "RUNNING"
    first.state = "RUNNING"

    with contextlib.closing(backend.get_connection()) as connection:
        assert connection.update_flow_details(detail) is detail
        first_stored_after_flow = _stored_atoms(url, book.uuid)["a9"].state
        first.state, first.results = "SUCCESS", {"destination": "host3"}
        assert connection.update_atom_details(first) is first
        with pytest.raises(tf_exc.NotFound, match="No atom details"):
            connection.update_atom_details(
                models.TaskDetail("gone", uuid="c9"))
        with pytest.raises(tf_exc.NotFound, match="No flow details"):
            connection.update_flow_details(models.FlowDetail("gone", "g9"))

    atoms = _stored_atoms(url, book.uuid)
    # Written by update_atom_details only, not by the flow's write.
    assert first_stored_after_flow is None
    assert (atoms["a9"].state, atoms["a9"].results) == (
        "SUCCESS", {"destination": "host3"})
    assert isinstance(atoms["b9"], models.RetryDetail)
    assert atoms["b9"].state == "PENDING"
    assert atoms["_flow_state"] == "RUNNING"


def _stored_atoms(url, book_uuid):
    """The atoms of the book's one flow as another process reads them,
    and the flow's state (``_flow_state``)."""
    other = persistence.FastSQLBackend({"connection": url})
    with contextlib.closing(other.get_connection()) as connection:
        (loaded,) = list(connection.get_logbook(book_uuid))
    other.close()
    return dict({atom.uuid: atom for atom in loaded},
                _flow_state=loaded.state)


def test_flows_are_inserted_into_a_logbook_by_a_private_method():
    insert = getattr(impl_sqlalchemy.Connection, "_insert_flow_details",
                     None)
    if insert is None:
        changed("impl_sqlalchemy.Connection._insert_flow_details",
                "it is gone")
    if parameters(insert) != ["self", "conn", "fd", "parent_uuid"]:
        changed("impl_sqlalchemy.Connection._insert_flow_details",
                f"its parameters are {parameters(insert)}, not (self, conn, "
                "fd, parent_uuid)")


def test_a_flow_is_added_and_the_metadata_saved_alone(url, backend):
    book = models.LogBook("run", uuid="0b5a2f7e-0000-4000-8000-000000000007")
    book.meta = {"state": "running"}
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)
    detail = models.FlowDetail("host1", uuid="f7")
    detail.add(models.TaskDetail("live-migrate[s1]", uuid="a7"))
    book.add(detail)
    book.meta["state"] = "finished"

    with contextlib.closing(backend.get_connection()) as connection:
        connection.add_flow_detail(book, detail)
        # Not written by adding a flow: the logbook's own row.
        assert connection.logbook_meta(book.uuid) == {"state": "running"}
        connection.save_logbook_meta(book)
        loaded = connection.get_logbook(book.uuid)

    assert loaded.meta == {"state": "finished"}
    assert [(d.uuid, [a.uuid for a in d]) for d in loaded] == [
        ("f7", ["a7"])]


def test_the_metadata_of_an_unknown_logbook_is_not_found(backend):
    book = models.LogBook("gone", uuid="0b5a2f7e-0000-4000-8000-000000000008")

    with contextlib.closing(backend.get_connection()) as connection, \
            pytest.raises(tf_exc.NotFound, match="No logbook found"):
        connection.save_logbook_meta(book)


def sql_internals_imported(path):
    """The TaskFlow SQL backend modules a file imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if name.startswith(SQL_INTERNALS)]
    return found


def test_only_taskflow_sql_imports_the_sql_internals():
    root = pathlib.Path(nova_migrate_flows.__file__).parent

    importers = sorted(str(path.relative_to(root))
                       for path in root.rglob("*.py")
                       if sql_internals_imported(path))

    assert importers == ["engine/taskflow_sql.py"]


def test_an_import_of_the_sql_internals_is_found(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(
        "from taskflow.persistence.backends import impl_sqlalchemy\n"
        "from taskflow.persistence.backends.sqlalchemy import tables\n"
        "import taskflow.persistence.backends.impl_sqlalchemy\n"
        "from taskflow.persistence import backends\n")

    assert sql_internals_imported(path) == [
        "taskflow.persistence.backends.impl_sqlalchemy",
        "taskflow.persistence.backends.sqlalchemy.tables",
        "taskflow.persistence.backends.impl_sqlalchemy",
    ]


def test_alembic_is_imported_only_when_a_schema_migration_runs():
    # On SQLite TaskFlow creates its tables without alembic: a run that
    # records in SQLite never pays for importing it.
    code = (
        "import sys\n"
        "import nova_migrate_flows.engine.taskflow_sql\n"
        "from taskflow.persistence.backends import impl_sqlalchemy\n"
        "print('alembic' in sys.modules)\n"
        "impl_sqlalchemy.migration.db_sync\n"
        "print('alembic' in sys.modules)\n"
    )
    printed = subprocess.run([sys.executable, "-c", code], check=True,
                             capture_output=True, text=True).stdout.split()

    assert printed == ["False", "True"]
