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
"""A run writes its record only while it holds the record's owner token."""

import contextlib
import threading

import pytest
from taskflow.persistence import models

from nova_migrate_flows import exceptions
from nova_migrate_flows.engine import (
    book_writes,
    fencing,
    persistence,
    records,
    taskflow_sql,
)
from tests import external

RUN_ID = "0b5a2f7e-0000-4000-8000-000000000006"


@pytest.fixture(params=["sqlite",
                        pytest.param("postgresql",
                                     marks=pytest.mark.postgresql),
                        "dir", "memory"])
def backend(request, conf, tmp_path):
    """Our SQL backend (which reads the owner alone, in the write's own
    transaction) and two of TaskFlow's (which read the logbook without its
    flows)."""
    conf.config(state_dir=str(tmp_path))
    if request.param == "postgresql":
        conf.config(group="persistence",
                    connection=external.address("postgresql"))
    elif request.param == "dir":
        conf.config(group="persistence", connection=f"dir://{tmp_path}/runs")
    elif request.param == "memory":
        conf.config(group="persistence", connection="memory://")
    backend = persistence.backend_from_conf(conf.conf)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.clear_all()
    yield backend
    backend.close()


def record(backend):
    """A run's record as its start leaves it: claimed, one flow, one
    atom; and the token of that claim."""
    store = records.Records(backend)
    book = store.create(RUN_ID, {"operation": "live-migrate",
                                 "servers": ["s1"]})
    detail = models.FlowDetail("live-migrate@s1", uuid="f1")
    detail.add(models.TaskDetail("live-migrate[s1]", uuid="a1"))
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)
    return book, fencing.token_of(book)


def stored(backend):
    """The run's metadata, and its flow's and atom's state, as stored."""
    book = records.Records(backend).get(RUN_ID)
    (detail,) = list(book)
    (atom,) = list(detail)
    return book.meta, detail.state, atom.state, atom.results


def writes(book):
    """Each write a run makes to its record, as (name, write)."""
    (detail,) = list(book)
    (atom,) = list(detail)

    def save_atom(connection):
        atom.state, atom.results = "SUCCESS", {"destination": "host9"}
        connection.update_atom_details(atom)

    def save_flow(connection):
        detail.state = "REVERTED"
        connection.update_flow_details(detail)

    def save_book(connection):
        book.meta["state"] = "failed"
        connection.save_logbook(book)

    def save_meta(connection):
        book.meta["state"] = "failed"
        book_writes.save_meta(connection, book)

    return [("atom", save_atom), ("flow", save_flow), ("book", save_book),
            ("meta", save_meta)]


def add_flow(connection, book):
    """Record a second flow in the run, the way a run adds each."""
    detail = models.FlowDetail("live-migrate@s2", uuid="f2")
    detail.add(models.TaskDetail("live-migrate[s2]", uuid="a2"))
    book.add(detail)
    book_writes.add_flow_detail(connection, book, detail)


def test_the_owner_of_a_run_writes_its_record(backend):
    book, token = record(backend)
    fenced = fencing.FencedBackend(backend, RUN_ID, token)

    for _, write in writes(book):
        with contextlib.closing(fenced.get_connection()) as connection:
            write(connection)

    meta, flow_state, atom_state, results = stored(backend)
    assert (meta["state"], flow_state, atom_state, results) == (
        "failed", "REVERTED", "SUCCESS", {"destination": "host9"})


def test_the_owner_of_a_run_adds_a_flow_to_its_record(backend):
    book, token = record(backend)
    fenced = fencing.FencedBackend(backend, RUN_ID, token)

    with contextlib.closing(fenced.get_connection()) as connection:
        add_flow(connection, book)

    recorded = records.Records(backend).get(RUN_ID)
    assert sorted((d.name, [a.name for a in d]) for d in recorded) == [
        ("live-migrate@s1", ["live-migrate[s1]"]),
        ("live-migrate@s2", ["live-migrate[s2]"])]


@pytest.mark.parametrize("what", ["atom", "flow", "book", "meta",
                                  "new flow"])
def test_a_run_taken_over_writes_nothing(backend, what):
    book, token = record(backend)
    fenced = fencing.FencedBackend(backend, RUN_ID, token)
    store = records.Records(backend)
    store.claim(store.get(RUN_ID))  # a resume elsewhere
    before = stored(backend)
    write = dict(writes(book), **{
        "new flow": lambda connection: add_flow(connection, book)})[what]

    with contextlib.closing(fenced.get_connection()) as connection, \
            pytest.raises(exceptions.RunTakenOver) as caught:
        write(connection)

    assert stored(backend) == before
    assert before[0]["owner"]["token"] != token
    assert str(caught.value) == (
        f"run {RUN_ID} was resumed by another process (host "
        f"{before[0]['owner']['host']}, pid {before[0]['owner']['pid']}): "
        "this process stopped without writing to the run's record again")
    assert caught.value.exit_code == exceptions.ExitCode.INTERRUPTED


@pytest.mark.parametrize("what", ["atom", "flow", "meta", "new flow"])
def test_the_sql_backend_checks_the_owner_inside_each_write(
        conf, tmp_path, monkeypatch, what):
    conf.config(state_dir=str(tmp_path))
    backend = persistence.backend_from_conf(conf.conf)
    book, token = record(backend)
    # No check apart from the write: the write's transaction reads it.
    monkeypatch.setattr(taskflow_sql._Connection, "logbook_meta",
                        lambda self, uuid: pytest.fail("checked apart"))
    all_writes = dict(writes(book), **{
        "new flow": lambda connection: add_flow(connection, book)})
    fenced = fencing.FencedBackend(backend, RUN_ID, token)
    with contextlib.closing(fenced.get_connection()) as connection:
        all_writes[what](connection)
    store = records.Records(backend)
    store.claim(store.get(RUN_ID))  # a resume elsewhere

    with contextlib.closing(fenced.get_connection()) as connection, \
            pytest.raises(exceptions.RunTakenOver):
        all_writes[what](connection)
    backend.close()


def test_each_claim_of_a_run_has_a_token_of_its_own(backend):
    book, token = record(backend)
    store = records.Records(backend)
    tokens = {token}

    for _ in range(3):
        claimed = store.get(RUN_ID)
        store.claim(claimed)
        tokens.add(fencing.token_of(store.get(RUN_ID)))

    assert len(tokens) == 4


@pytest.mark.postgresql
def test_a_write_on_postgresql_waits_for_a_claim_in_progress(conf):
    conf.config(group="persistence",
                connection=external.address("postgresql"))
    backend = persistence.backend_from_conf(conf.conf)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.clear_all()
    book, token = record(backend)
    (detail,) = list(book)
    (atom,) = list(detail)
    fenced = fencing.FencedBackend(backend, RUN_ID, token)
    claimed = dict(book.meta, owner=dict(book.meta["owner"], token="other"))
    outcome = []

    def write():
        atom.state = "SUCCESS"
        try:
            with contextlib.closing(fenced.get_connection()) as connection:
                connection.update_atom_details(atom)
        except exceptions.RunTakenOver as exc:
            outcome.append(exc)
        else:
            outcome.append("written")

    logbooks = backend.tables.logbooks
    with backend.engine.connect() as claim:
        # A resume's claim, not committed yet: it holds the logbook's row.
        claim.execute(logbooks.update().where(logbooks.c.uuid == RUN_ID)
                      .values(meta=claimed))
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(0.5)
        waited = writer.is_alive()
        claim.commit()
    writer.join()

    assert waited, outcome
    assert isinstance(outcome[0], exceptions.RunTakenOver)
    assert stored(backend)[2] is None
    backend.close()
