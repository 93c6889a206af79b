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
"""Writing part of a run's logbook without writing all of it.

TaskFlow's backends offer ``save_logbook(book)`` to add a flow detail to a
logbook or change its metadata, and it writes every flow detail and every
atom detail the book holds (the SQL backend reads them all back first). A
run records one flow detail per source host, one after the other: with the
whole book each time, a run of N flows wrote N²/2 flow details and all
their atoms (at 200 hosts, most of the time a recorded run took).

:func:`add_flow_detail` and :func:`save_meta` write only the part that
changed. On a connection that can do it directly (our SQL backend's,
:class:`~nova_migrate_flows.engine.taskflow_sql._Connection`) they do; on
any other they save a copy of the book that holds only that part: TaskFlow's
backends update what a saved book holds and keep what it does not.
"""

from typing import Any

from taskflow.persistence import models as tf_models


def add_flow_detail(conn: Any, book: Any, detail: Any) -> None:
    """Add ``detail`` (and its atoms) to ``book``, saved before."""
    add = getattr(conn, "add_flow_detail", None)
    if add is not None:
        add(book, detail)
    else:
        conn.save_logbook(_copy_holding(book, [detail]))


def save_meta(conn: Any, book: Any) -> None:
    """Write ``book``'s metadata, not its flows."""
    save = getattr(conn, "save_logbook_meta", None)
    if save is not None:
        save(book)
    else:
        conn.save_logbook(_copy_holding(book, []))


def _copy_holding(book: Any, details: list[Any]) -> Any:
    """A logbook like ``book`` that holds ``details`` only."""
    copy = tf_models.LogBook(book.name, uuid=book.uuid)
    copy.meta = book.meta
    copy.created_at = book.created_at
    copy.updated_at = book.updated_at
    for detail in details:
        copy.add(detail)
    return copy
