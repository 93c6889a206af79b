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
"""Recording runs and resuming one whose process stopped mid-way, in each
backend a ``[persistence] connection`` URL may name."""

import contextlib
import threading
import time
import uuid

import pytest
from taskflow import exceptions as tf_exc
from taskflow.persistence import backends as tf_backends
from taskflow.persistence import models as tf_models
from taskflow.persistence.backends import impl_dir, impl_zookeeper

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.engine import book_writes, persistence, records
from nova_migrate_flows.engine import runner as runner_mod
from tests import external


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    "dir",
    pytest.param("zookeeper", marks=pytest.mark.zookeeper),
])
def backend(request, conf, tmp_path):
    """The persistence backend: SQLite and PostgreSQL (the fast backend),
    and TaskFlow's directory and ZooKeeper backends."""
    conf.config(state_dir=str(tmp_path))
    if request.param != "sqlite":
        conf.config(group="persistence",
                    connection=connection_url(request.param, tmp_path))
    backend = persistence.backend_from_conf(conf.conf)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.clear_all()
        # Path-based backends (dir, zookeeper) remove their trees.
        connection.upgrade()
    yield backend
    backend.close()


def connection_url(kind, tmp_path):
    """A ``[persistence] connection`` of each kind, empty."""
    if kind == "postgresql":
        return external.address("postgresql")
    if kind == "zookeeper":
        return (f"zookeeper://{external.address('zookeeper')}"
                f"/nmf-tests-{uuid.uuid4()}")
    assert kind == "dir"
    return f"dir://{tmp_path / 'runs'}"


def request(conf, operation, **given):
    return request_mod.build_request(
        conf.conf, request_mod.Operation(operation), **given)


def test_the_database_is_created_under_the_state_dir(conf, tmp_path):
    conf.config(state_dir=str(tmp_path / "state"))

    persistence.backend_from_conf(conf.conf)

    assert (tmp_path / "state" / persistence.DB_NAME).exists()
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_a_bad_connection_url_is_a_configuration_error(conf):
    conf.config(group="persistence", connection="nosuchdb://x")

    with pytest.raises(exceptions.ConfigurationError,
                       match=r"\[persistence\] connection"):
        persistence.backend_from_conf(conf.conf)


ACCEPTED = ("accepted schemes: dir, file, memory, mysql, postgresql, sqlite, "
            "zookeeper")


@pytest.mark.parametrize("url, error", [
    ("nosuchdb://nmf:s3cret@db/nmf",
     f"[persistence] connection: unknown scheme 'nosuchdb'; {ACCEPTED}"),
    ("/var/lib/nmf/runs.sqlite",
     f"[persistence] connection: not a URL (no scheme); {ACCEPTED}"),
])
def test_an_unknown_scheme_is_refused_in_one_line(conf, url, error):
    conf.config(group="persistence", connection=url)

    with pytest.raises(exceptions.ConfigurationError) as caught:
        persistence.backend_from_conf(conf.conf)

    assert str(caught.value) == error


@pytest.mark.parametrize("url", [
    None, "sqlite:///{tmp}/runs.sqlite", "sqlite+pysqlite:///{tmp}/r.db"])
def test_sql_urls_get_the_fast_backend(conf, tmp_path, monkeypatch, url):
    conf.config(state_dir=str(tmp_path))
    if url:
        conf.config(group="persistence", connection=url.format(tmp=tmp_path))
    monkeypatch.setattr(tf_backends, "fetch", _never)

    backend = persistence.backend_from_conf(conf.conf)

    assert type(backend) is persistence.FastSQLBackend
    backend.close()


@pytest.mark.parametrize("scheme", ["dir", "file"])
def test_a_directory_is_fetched_from_taskflow_and_made_ready(
        conf, tmp_path, monkeypatch, scheme):
    fetched = []
    fetch = tf_backends.fetch
    monkeypatch.setattr(tf_backends, "fetch",
                        lambda conf: fetched.append(conf) or fetch(conf))
    url = f"{scheme}://{tmp_path}/state/runs?max_cache_size=64"
    conf.config(group="persistence", connection=url)

    backend = persistence.backend_from_conf(conf.conf)

    assert fetched == [{"connection": url,
                        "path": str(tmp_path / "state" / "runs")}]
    assert type(backend) is impl_dir.DirBackend
    assert backend.file_cache.maxsize == 64  # the query reached TaskFlow
    assert sorted(path.name for path in (tmp_path / "state" / "runs")
                  .iterdir()) == ["atom_details", "books", "flow_details"]
    assert (tmp_path / "state" / "runs").stat().st_mode & 0o777 == 0o700


def test_a_directory_url_needs_an_absolute_path(conf):
    conf.config(group="persistence", connection="dir://runs/here")

    with pytest.raises(exceptions.ConfigurationError,
                       match=r"^\[persistence\] connection: a dir URL names a "
                       r"directory by its absolute path"):
        persistence.backend_from_conf(conf.conf)


def test_a_zookeeper_url_with_a_password_is_refused_without_it(conf):
    conf.config(group="persistence",
                connection="zookeeper://nmf:s3cret@zk1:2181/nmf")

    with pytest.raises(exceptions.ConfigurationError) as caught:
        persistence.backend_from_conf(conf.conf)

    assert str(caught.value) == (
        "[persistence] connection: a zookeeper URL takes no user or "
        "password, only host:port[,host:port...]")


def test_a_directory_that_cannot_be_made_is_a_configuration_error(
        conf, tmp_path):
    (tmp_path / "file").write_text("")
    conf.config(group="persistence", connection=f"dir://{tmp_path}/file/runs")

    with pytest.raises(exceptions.ConfigurationError,
                       match=r"^\[persistence\] connection: .*/file/runs: "
                       "cannot create it"):
        persistence.backend_from_conf(conf.conf)


@pytest.mark.parametrize("url, expected", [
    ("zookeeper://zk1:2181,zk2:2181/nmf?timeout=5",
     {"connection": "zookeeper:///nmf?timeout=5", "hosts": "zk1:2181,zk2:2181",
      "path": "/nmf"}),
    ("zookeeper://zk1:2181",
     {"connection": "zookeeper:///", "hosts": "zk1:2181"}),
    ("memory://", {"connection": "memory://"}),
])
def test_what_taskflow_is_given_for_a_url(url, expected):
    assert persistence.fetch_conf(persistence.scheme_of(url), url) == expected


def test_a_backend_that_fails_to_open_is_closed_and_explained(
        conf, monkeypatch):
    conf.config(group="persistence", connection="zookeeper://zk1:2181/nmf")
    closed = []

    def refused(self):
        try:
            raise RuntimeError("Unable to fetch useable server version after "
                               "trying 4 times")
        except RuntimeError as exc:
            raise tf_exc.StorageFailure(
                "Storage backend internal error") from exc

    monkeypatch.setattr(impl_zookeeper.ZkBackend, "get_connection", refused)
    monkeypatch.setattr(impl_zookeeper.ZkBackend, "close",
                        lambda self: closed.append(self))

    with pytest.raises(exceptions.ConfigurationError) as caught:
        persistence.backend_from_conf(conf.conf)

    assert str(caught.value) == (
        "[persistence] connection: cannot open the zookeeper backend "
        "(StorageFailure: Storage backend internal error: Unable to fetch "
        "useable server version after trying 4 times (allow the 'envi' "
        "command: 4lw.commands.whitelist = envi in zoo.cfg))")
    assert len(closed) == 1


def test_a_run_in_memory_is_recorded_in_its_backend_alone(conf, cloud):
    conf.config(group="persistence", connection="memory://")
    backend = persistence.backend_from_conf(conf.conf)
    server = cloud.add_server("host1")

    result = runner_mod.Runner(conf.conf, cloud, backend=backend).run(
        request(conf, "live-migrate", servers=[server.id]))

    (book,) = records.Records(backend).list()
    assert book.uuid == result.run_id
    assert book.meta["state"] == constants.RunState.FINISHED
    assert records.Records(persistence.backend_from_conf(conf.conf)).list() \
        == []


def test_a_run_in_a_directory_is_listed_and_resumed_by_another_process(
        conf, cloud, tmp_path):
    conf.config(group="persistence", connection=f"dir://{tmp_path}/runs")
    server = cloud.add_server("host1", name="web")
    sent = threading.Event()
    release = threading.Event()
    original = cloud.live_migrate

    def dies_after_sending(server_id, *args, **kwargs):
        original(server_id, *args, **kwargs)
        sent.set()
        release.wait()
        raise RuntimeError("the process died")

    cloud.live_migrate = dies_after_sending
    first = persistence.backend_from_conf(conf.conf)
    thread, ended = _in_a_thread(
        runner_mod.Runner(conf.conf, cloud, backend=first).run,
        request(conf, "live-migrate", servers=[server.id]))
    assert sent.wait(20)
    _wait_for(lambda: _stuck_book(records.Records(first), server.id))
    cloud.live_migrate = original

    # Another process: a backend of its own on the same directory. (In one
    # process, TaskFlow's file locks do not keep it from reading a file the
    # first backend writes: the first run stays blocked until the resume
    # has ended, then finds it was taken over.)
    second = persistence.backend_from_conf(conf.conf)
    (book,) = records.Records(second).list()
    assert book.meta["state"] == constants.RunState.RUNNING
    assert [(s["server"], s["status"])
            for s in records.describe(book)["servers"]] == [
        (server.id, "starting")]
    result = runner_mod.Runner(conf.conf, cloud, backend=second).resume(
        book.uuid)
    resumed = _snapshot(conf, book.uuid)

    _end_the_first_run(release, thread, ended, book.uuid)
    assert _snapshot(conf, book.uuid) == resumed
    assert result.outcomes[0]["status"] == "migrated"
    assert cloud.calls["live_migrate"] == 1
    assert _recorded(conf, book.uuid) == (constants.RunState.FINISHED,
                                          {server.id: "migrated"})


def test_a_read_waits_for_a_write_of_the_same_process(conf, tmp_path):
    conf.config(group="persistence", connection=f"dir://{tmp_path}/runs")
    backend = persistence.backend_from_conf(conf.conf)
    store = records.Records(backend)
    listed = threading.Event()
    # TaskFlow's directory backend takes this lock for every write.
    assert hasattr(backend.lock, "write_lock"), (
        "TaskFlow's DirBackend has no reader-writer lock 'lock' any more: "
        "records._read_lock relies on it")

    with backend.lock.write_lock():
        thread = threading.Thread(
            target=lambda: store.list() == [] and listed.set(), daemon=True)
        thread.start()
        assert not listed.wait(0.2)

    thread.join(10)
    assert listed.is_set()


def test_a_read_that_meets_a_run_half_written_is_tried_again(
        conf, tmp_path, monkeypatch):
    conf.config(state_dir=str(tmp_path))
    backend = persistence.backend_from_conf(conf.conf)
    store = records.Records(backend)
    store.create("0b5a2f7e-0000-4000-8000-000000000002",
                 {"operation": "live-migrate", "servers": ["s1"]})
    monkeypatch.setattr(records, "READ_RETRY_DELAY", 0)
    failures = [tf_exc.NotFound("a flow being written")] * 2
    connection_class = type(backend.get_connection())
    original = connection_class.get_logbooks

    def half_written(self, *args, **kwargs):
        if failures:
            raise failures.pop()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(connection_class, "get_logbooks", half_written)

    (book,) = store.list()

    assert book.uuid == "0b5a2f7e-0000-4000-8000-000000000002"
    assert failures == []


def test_a_run_that_stays_missing_is_no_such_run(conf, tmp_path,
                                                 monkeypatch):
    conf.config(state_dir=str(tmp_path))
    store = records.Records(persistence.backend_from_conf(conf.conf))
    monkeypatch.setattr(records, "READ_RETRY_DELAY", 0)

    with pytest.raises(exceptions.InvalidInput, match="no such run"):
        store.get("0b5a2f7e-0000-4000-8000-000000000003")


def _never(*args, **kwargs):
    raise AssertionError("taskflow.persistence.backends.fetch was called")


def test_a_run_is_recorded_with_its_request_and_outcomes(conf, cloud,
                                                         backend):
    server = cloud.add_server("host1", name="web")
    runner = runner_mod.Runner(conf.conf, cloud, backend=backend)

    result = runner.run(request(conf, "host-evacuate-live", hosts=["host1"]))

    book = records.Records(backend).get(result.run_id)
    assert book.meta["state"] == constants.RunState.FINISHED
    assert book.meta["request"]["hosts"] == ["host1"]
    view = records.describe(book)
    assert [(s["server"], s["status"]) for s in view["servers"]] == [
        (server.id, "migrated")]


def test_a_run_of_many_hosts_is_recorded_in_every_backend(backend):
    # A logbook's name is kept in 255 characters by TaskFlow's SQL tables:
    # PostgreSQL refused the name of a run of 200 hosts (DataError).
    hosts = [f"compute-{i:03d}.example.org" for i in range(200)]
    store = records.Records(backend)

    store.create("5d0e2a9c-31f4-4c1e-9a77-0e6f1c2b3a41",
                 {"operation": "host-evacuate-live", "hosts": hosts})

    book = store.get("5d0e2a9c-31f4-4c1e-9a77-0e6f1c2b3a41")
    assert book.meta["request"]["hosts"] == hosts
    assert len(book.name) <= records.TITLE_LENGTH
    assert book.name.startswith(
        "host-evacuate-live compute-000.example.org compute-001.")
    shown = book.name.split(" and ")[0].split()[1:]
    assert book.name.endswith(f" and {200 - len(shown)} more")
    assert shown == hosts[:len(shown)]


def _flow(name, state):
    detail = tf_models.FlowDetail(name, uuid=str(uuid.uuid4()))
    atom = tf_models.TaskDetail(f"task[{name}]", uuid=str(uuid.uuid4()))
    atom.state = state
    detail.add(atom)
    return detail


def _recorded_states(backend, run_id):
    book = records.Records(backend).get(run_id)
    return {detail.name: [atom.state for atom in detail] for detail in book}


def _recorded_then_changed(backend, run_id, asked):
    """A run recorded with flow ``h1`` (its task ``SUCCESS``), whose task
    then changes in memory without being saved (``FAILURE``): what a
    later write of the run must leave as stored. The run's logbook."""
    book = records.Records(backend).create(run_id, asked)
    first = _flow("h1", "SUCCESS")
    book.add(first)
    with contextlib.closing(backend.get_connection()) as connection:
        book_writes.add_flow_detail(connection, book, first)
    (atom,) = list(first)
    atom.state = "FAILURE"
    return book


def test_a_flow_added_to_a_run_is_written_alone(backend):
    # A run adds one flow per source host; rewriting the whole book each
    # time made recording 200 hosts quadratic.
    run_id = "5d0e2a9c-31f4-4c1e-9a77-0e6f1c2b3a42"
    book = _recorded_then_changed(backend, run_id, {
        "operation": "host-evacuate-live", "hosts": ["h1", "h2"]})
    second = _flow("h2", "PENDING")
    book.add(second)

    with contextlib.closing(backend.get_connection()) as connection:
        book_writes.add_flow_detail(connection, book, second)

    assert _recorded_states(backend, run_id) == {"h1": ["SUCCESS"],
                                                 "h2": ["PENDING"]}


def test_the_metadata_of_a_run_is_written_without_its_flows(backend):
    run_id = "5d0e2a9c-31f4-4c1e-9a77-0e6f1c2b3a43"
    store = records.Records(backend)
    asked = {"operation": "host-evacuate-live", "hosts": ["h1"]}
    book = _recorded_then_changed(backend, run_id, asked)

    store.update(book, state=constants.RunState.FINISHED)

    recorded = store.get(run_id)
    assert recorded.meta["state"] == constants.RunState.FINISHED
    assert recorded.meta["request"] == asked
    assert recorded.name == book.name
    assert _recorded_states(backend, run_id) == {"h1": ["SUCCESS"]}


def test_a_short_run_title_names_everything():
    assert records._title({"operation": "live-migrate",
                           "servers": ["a", "b"]}) == "live-migrate a b"


def test_a_refused_run_is_recorded_as_refused(conf, cloud, backend):
    server = cloud.add_server("host1", config_drive=True)
    runner = runner_mod.Runner(conf.conf, cloud, backend=backend)

    with pytest.raises(exceptions.InvalidInput):
        runner.run(request(conf, "live-migrate", servers=[server.id]))

    (book,) = records.Records(backend).list()
    assert book.meta["state"] == constants.RunState.REFUSED


def test_resume_finishes_a_run_whose_process_stopped(conf, cloud, backend):
    servers = [cloud.add_server("host1", name=f"s{i}").id for i in range(3)]
    stuck = servers[1]
    release = threading.Event()
    original = cloud.live_migrate

    def dies_on_the_second(server_id, *args, **kwargs):
        if server_id == stuck:
            release.wait()
            raise RuntimeError("the process died")
        return original(server_id, *args, **kwargs)

    cloud.live_migrate = dies_on_the_second
    first = runner_mod.Runner(conf.conf, cloud, backend=backend)
    # Three at once, whichever is sent first (the pipeline's slots open
    # only once Nova's compute holds a migration of the host).
    thread, ended = _in_a_thread(first.run, request(
        conf, "host-evacuate-live", hosts=["host1"], max_concurrent=3))
    store = records.Records(backend)
    expected = {servers[0]: "migrated", stuck: "starting",
                servers[2]: "migrated"}
    book = _wait_for(lambda: next(
        (b for b in store.list() if {
            s["server"]: s["status"]
            for s in records.describe(b)["servers"]} == expected), None))
    cloud.live_migrate = original

    result, recorded = _resume_in_another_process(conf, cloud, book.uuid)
    resumed = _snapshot(conf, book.uuid)

    # The first run's blocked task fails now: it was taken over, and
    # nothing it would write (the failure, a revert, its final state)
    # changes what the resume recorded.
    _end_the_first_run(release, thread, ended, book.uuid)
    assert _snapshot(conf, book.uuid) == resumed
    assert _recorded(conf, book.uuid) == recorded == (
        constants.RunState.FINISHED, {s: "migrated" for s in servers})
    assert [o["status"] for o in result.outcomes] == ["migrated"] * 3
    per_server = [m.record.server_id for m in cloud.migrations]
    assert sorted(per_server) == sorted(servers)
    assert cloud.services["host1"].status == "disabled"
    assert result.hosts[0]["disabled_by_us"] is True
    assert "evacuated" in cloud.services["host1"].disabled_reason


class _Killed(BaseException):
    """The process dying: no ``except Exception`` stops it."""


def test_a_run_killed_as_it_records_a_flow_can_be_resumed(conf, cloud,
                                                           backend):
    servers = [cloud.add_server("host1", name=f"s{i}").id for i in range(2)]
    real = backend.get_connection
    dead = threading.Event()

    def dies_once_a_host_flow_is_written():
        # The first write that records the host's flow is the last one.
        if dead.is_set():
            raise _Killed
        connection = real()

        def dies_after(write):
            def written(book, *details):
                if dead.is_set():
                    raise _Killed
                saved = write(book, *details)
                if any(d.name.endswith("@host1")
                       for d in details or list(book)):
                    dead.set()
                    raise _Killed
                return saved
            return written

        connection.save_logbook = dies_after(connection.save_logbook)
        if hasattr(connection, "add_flow_detail"):
            connection.add_flow_detail = dies_after(
                connection.add_flow_detail)
        return connection

    backend.get_connection = dies_once_a_host_flow_is_written
    with pytest.raises(_Killed):
        runner_mod.Runner(conf.conf, cloud, backend=backend).run(
            request(conf, "host-evacuate-live", hosts=["host1"]))
    backend.get_connection = real
    (book,) = records.Records(backend).list()
    assert not cloud.migrations

    result, recorded = _resume_in_another_process(conf, cloud, book.uuid)

    assert recorded == (constants.RunState.FINISHED,
                        {s: "migrated" for s in servers})
    assert [o["status"] for o in result.outcomes] == ["migrated"] * 2


def test_resume_adopts_a_migration_in_flight(conf, cloud, backend):
    server = cloud.add_server("host1")
    release = threading.Event()
    original = cloud.live_migrate

    def dies_after_sending(server_id, *args, **kwargs):
        original(server_id, *args, **kwargs)
        release.wait()
        raise RuntimeError("the process died")

    cloud.live_migrate = dies_after_sending
    first = runner_mod.Runner(conf.conf, cloud, backend=backend)
    thread, ended = _in_a_thread(first.run, request(
        conf, "live-migrate", servers=[server.id]))
    store = records.Records(backend)
    book = _wait_for(lambda: _stuck_book(store, server.id))
    cloud.live_migrate = original

    result, recorded = _resume_in_another_process(conf, cloud, book.uuid)
    resumed = _snapshot(conf, book.uuid)

    _end_the_first_run(release, thread, ended, book.uuid)
    assert _snapshot(conf, book.uuid) == resumed
    assert _recorded(conf, book.uuid) == recorded == (
        constants.RunState.FINISHED, {server.id: "migrated"})
    assert result.outcomes[0]["status"] == "migrated"
    assert len(cloud.migrations) == 1
    assert cloud.calls["live_migrate"] == 1


def test_resume_of_an_unknown_run_is_bad_input(conf, cloud, backend):
    with pytest.raises(exceptions.InvalidInput, match="no such run"):
        runner_mod.Runner(conf.conf, cloud, backend=backend).resume(
            "0b5a2f7e-0000-4000-8000-000000000000")


def _resume_in_another_process(conf, cloud, run_id):
    """Resume the run from the database opened anew, as another process
    would; the result, and the run as then recorded."""
    reopened = persistence.backend_from_conf(conf.conf)
    try:
        result = runner_mod.Runner(conf.conf, cloud,
                                   backend=reopened).resume(run_id)
    finally:
        reopened.close()
    return result, _recorded(conf, run_id)


def _recorded(conf, run_id):
    """The run's state and each server's status, read from the database
    opened anew."""
    reopened = persistence.backend_from_conf(conf.conf)
    try:
        run = records.describe(records.Records(reopened).get(run_id))
    finally:
        reopened.close()
    return run["state"], {s["server"]: s["status"] for s in run["servers"]}


def _snapshot(conf, run_id):
    """Everything the run's record holds, read from the database opened
    anew: the run's metadata, and each flow's state and meta with each of
    its atoms' state, intention, results and failure."""
    reopened = persistence.backend_from_conf(conf.conf)
    try:
        book = records.Records(reopened).get(run_id)
    finally:
        reopened.close()
    return book.meta, {
        detail.name: (detail.state, detail.meta, {
            atom.name: (atom.state, atom.intention, atom.results,
                        atom.failure.to_dict() if atom.failure else None)
            for atom in detail})
        for detail in book}


def _in_a_thread(func, *args):
    """Run ``func(*args)`` in a thread, as the first process's run; the
    thread, and what it ended with: ``{"error": ...}`` or ``{"result":
    ...}``."""
    ended = {}

    def run():
        try:
            ended["result"] = func(*args)
        except Exception as exc:  # noqa: BLE001 - checked by the test
            ended["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, ended


def _end_the_first_run(release, thread, ended, run_id):
    """Let the first run's blocked task go on, wait for that run to end,
    and check it ended because the resume took the run over."""
    release.set()
    thread.join(20)
    assert not thread.is_alive()
    assert "result" not in ended
    assert type(ended["error"]) is exceptions.RunTakenOver
    assert ended["error"].run_id == run_id
    assert str(ended["error"]).startswith(
        f"run {run_id} was resumed by another process (host ")


def _stuck_book(store, server_id):
    for book in store.list():
        for detail in book:
            for atom in detail:
                if atom.name == f"live-migrate[{server_id}]" and \
                        atom.state == "RUNNING":
                    return book
    return None


def _wait_for(probe, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")
