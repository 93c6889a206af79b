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
"""The launcher builds a new flow once (building is most of the cost of
starting a large drain), and rebuilds a recorded one from its factory."""

import concurrent.futures
import contextlib

import pytest
from taskflow import task
from taskflow.patterns import linear_flow
from taskflow.persistence import backends
from taskflow.persistence import models as tf_models

from nova_migrate_flows.engine import launching

BUILT: list[str] = []
RAN: list[str] = []


class Note(task.Task):
    def execute(self, word):
        RAN.append(word)


def noting_flow(word):
    """A module-level factory, as a recorded flow needs; the flow is named
    as its spec."""
    BUILT.append(word)
    return linear_flow.Flow("note").add(Note(name="note-it"))


@pytest.fixture
def book_and_backend():
    backend = backends.fetch({"connection": "memory://"})
    book = tf_models.LogBook("launching")
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    BUILT.clear()
    RAN.clear()
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        yield book, backend, executor


def launcher(book, backend, executor):
    return launching.Launcher(backend=backend, book=book, executor=executor,
                              runtime=object(), store={})


def test_a_new_flow_is_built_once_and_a_recorded_one_from_its_factory(
        book_and_backend):
    book, backend, executor = book_and_backend
    spec = launching.FlowSpec("note", noting_flow, {"word": "hello"},
                              {"word": "hello"})

    first = launcher(book, backend, executor)
    first.run(first.engine(spec))

    assert BUILT == ["hello"]
    assert RAN == ["hello"]

    # A resume: the flow detail is recorded; its factory builds the flow.
    with contextlib.closing(backend.get_connection()) as conn:
        recorded = conn.get_logbook(book.uuid)
    again = launcher(recorded, backend, executor)
    engine = again.engine(spec)
    assert BUILT == ["hello", "hello"]
    again.run(engine)
    assert RAN == ["hello"]
