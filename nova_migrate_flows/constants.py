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
"""The ground floor: names, store keys and statuses that every layer uses.

Names of flows, atoms and store keys are built here and nowhere else.
TaskFlow rejects duplicate atom names and ambiguous provides, so every name
that repeats per server or per host carries the server's id or the host's
name; ``tests/unit/test_flows.py`` checks they stay unique. The statuses are
those of this tool (a server's outcome, a run's state) and the ones of Nova
that the tool acts on (migration types and statuses).

This module imports nothing of the project: any module may import it.
"""

import enum

#: Store keys shared by the whole run.
RUNTIME = "runtime"
REQUEST = "request"
SERVERS = "servers"
PLAN = "plan"

#: The task that turns the preflight's verdicts into the plan.
BUILD_PLAN = "build-plan"


def preflight_key(plugin: str) -> str:
    """Where a preflight check puts its verdicts."""
    return f"preflight:{plugin}"


def server_key(what: str, server_id: str) -> str:
    """A store key (or atom name) of one server."""
    return f"{what}[{server_id}]"


def host_key(what: str, host: str) -> str:
    """A store key (or atom name) of one host."""
    return f"{what}@{host}"


def start_atom(kind: str, server_id: str) -> str:
    """The task that starts a server's move of ``kind``."""
    return server_key(kind, server_id)


def wait_atom(kind: str, server_id: str) -> str:
    """The task that waits for a server's move of ``kind``."""
    return server_key(f"wait-{kind}", server_id)


def server_flow(server_id: str) -> str:
    return f"server[{server_id}]"


def single_flow(operation: str, server_id: str) -> str:
    """The flow of an operation on one server."""
    return f"{operation}[{server_id}]"


def host_flow(operation: str, host: str) -> str:
    return f"{operation}@{host}"


def preflight_flow(operation: str) -> str:
    return f"{operation}:preflight"


def disable_flow(operation: str) -> str:
    return f"{operation}:disable"


#: What each server of a plan undergoes: the name of a move kind (see
#: :mod:`nova_migrate_flows.moves`), or SKIP.
LIVE = "live-migrate"
COLD = "cold-migrate"
RESIZE = "resize"
EVACUATE = "evacuate"
SKIP = "skip"


class ServerStatus(enum.StrEnum):
    """What happened to one server: the ``status`` of its outcome."""

    MIGRATED = "migrated"
    FAILED = "failed"
    SKIPPED = "skipped"


class RunState(enum.StrEnum):
    """The state of a run, as its record keeps it."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"
    DRY_RUN = "dry-run"
    POSTED = "posted"


#: How the reason of a server that an interruption kept from moving
#: starts, and how that of a server whose move an interruption aborted does.
NOT_STARTED = "not started"
INTERRUPTED = "interrupted"

#: Nova's migration_type of a live migration (the others: ``migration``,
#: ``resize``, ``evacuation``).
LIVE_MIGRATION = "live-migration"
#: Nova's migration statuses after which a waiting task may go on, per
#: migration type, and those that mean the move failed.
SUCCESS_STATUSES = {
    LIVE_MIGRATION: frozenset({"completed"}),
    "migration": frozenset({"finished", "confirmed"}),
    "resize": frozenset({"finished", "confirmed"}),
    "evacuation": frozenset({"done", "completed"}),
}
FAILURE_STATUSES = frozenset({"error", "failed", "cancelled", "reverted"})
#: Every status after which a migration changes no more (of any type).
ENDED_STATUSES = (FAILURE_STATUSES
                  | frozenset().union(*SUCCESS_STATUSES.values()))
RUNNING_STATUSES = frozenset({"preparing", "running", "post-migrating",
                              "pre-migrating", "migrating"})
#: Statuses of a migration that has not started yet.
WAITING_STATUSES = frozenset({"accepted", "queued"})
#: Statuses of a live migration that Nova aborts (microversion 2.65;
#: ``running`` only before it).
ABORTABLE_STATUSES = frozenset({"queued", "preparing", "running"})
#: Statuses of a migration that Nova's compute holds (its conductor, which
#: records a live migration ``accepted``, is through with it).
COMPUTE_STATUSES = (frozenset({"queued"}) | RUNNING_STATUSES
                    | frozenset().union(*SUCCESS_STATUSES.values()))

#: A run's task threads are at most this many times ``[engine]
#: executor_workers`` (one per throttle lane of every host, up to that).
TASK_THREADS_FACTOR = 4
#: Threads besides the task threads that may send requests at once: the
#: poller, the abort lanes and the placement readers (with room to spare).
OTHER_REQUEST_THREADS = 16
