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
"""The paths Nova's statuses take, read from Nova 34's code.

A migration record's status per kind of move (conductor, compute manager
and resource tracker), and what a server shows (``status``, with its
``task_state`` when it has one: ``RESIZE:resize_prep``). The fake must walk
these graphs one edge at a time; a poll of real Nova may miss short-lived
statuses, so what it sees must only be reachable, one status from the last.
"""

from collections.abc import Mapping, Sequence

Graph = Mapping[str, frozenset[str]]

_LIVE: Graph = {
    "accepted": frozenset({"queued", "preparing", "error"}),
    "queued": frozenset({"preparing", "cancelled", "error"}),
    "preparing": frozenset({"running", "cancelled", "failed", "error"}),
    "running": frozenset({"completed", "failed", "cancelled"}),
}
_COLD: Graph = {
    "pre-migrating": frozenset({"migrating", "error"}),
    "migrating": frozenset({"post-migrating", "error"}),
    "post-migrating": frozenset({"finished", "error"}),
    "finished": frozenset({"confirming", "reverting"}),
    "confirming": frozenset({"confirmed", "error"}),
    "reverting": frozenset({"reverted", "error"}),
    # The target drops its claim (reverted), then the source fails.
    "reverted": frozenset({"error"}),
}
_EVACUATION: Graph = {
    "accepted": frozenset({"pre-migrating", "error", "failed"}),
    "pre-migrating": frozenset({"done", "failed"}),
    "done": frozenset({"completed"}),
}

#: Each kind of move: the status its record is created with, its graph.
MIGRATIONS: dict[str, tuple[str, Graph]] = {
    "live-migration": ("accepted", _LIVE),
    "migration": ("pre-migrating", _COLD),
    "resize": ("pre-migrating", _COLD),
    "evacuation": ("accepted", _EVACUATION),
}

#: What a server shows, from Nova's ``_STATE_MAP`` and the task states
#: the API and the computes set on the way.
SERVER: Graph = {
    "ACTIVE": frozenset({"MIGRATING:migrating", "RESIZE:resize_prep",
                         "ACTIVE:powering-off", "REBUILD:rebuilding"}),
    "PAUSED": frozenset({"MIGRATING:migrating"}),
    "SHUTOFF": frozenset({"RESIZE:resize_prep", "SHUTOFF:powering-on",
                          "REBUILD:rebuilding"}),
    "ERROR": frozenset({"REBUILD:rebuilding"}),
    "MIGRATING:migrating": frozenset({"ACTIVE", "PAUSED"}),
    "ACTIVE:powering-off": frozenset({"SHUTOFF"}),
    "SHUTOFF:powering-on": frozenset({"ACTIVE"}),
    "RESIZE:resize_prep": frozenset({"RESIZE:resize_migrating", "ACTIVE",
                                     "SHUTOFF", "ERROR"}),
    "RESIZE:resize_migrating": frozenset({"RESIZE:resize_migrated",
                                          "ACTIVE", "SHUTOFF", "ERROR"}),
    "RESIZE:resize_migrated": frozenset({"RESIZE:resize_finish", "ERROR"}),
    "RESIZE:resize_finish": frozenset({"VERIFY_RESIZE", "ERROR"}),
    "VERIFY_RESIZE": frozenset({"ACTIVE", "SHUTOFF",
                                "REVERT_RESIZE:resize_reverting"}),
    "REVERT_RESIZE:resize_reverting": frozenset(
        {"ACTIVE", "VERIFY_RESIZE:powering-off", "ERROR:resize_reverting"}),
    "ERROR:resize_reverting": frozenset({"ERROR"}),
    "VERIFY_RESIZE:powering-off": frozenset({"SHUTOFF"}),
    "REBUILD:rebuilding": frozenset({"REBUILD:rebuild_block_device_mapping",
                                     "ERROR"}),
    "REBUILD:rebuild_block_device_mapping": frozenset(
        {"REBUILD:rebuild_spawning", "ERROR"}),
    "REBUILD:rebuild_spawning": frozenset({"ACTIVE", "ACTIVE:powering-off",
                                           "ERROR"}),
}


def _reachable(graph: Graph, start: str) -> frozenset[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for following in graph.get(todo.pop(), frozenset()):
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return frozenset(seen)


def wrong_steps(graph: Graph, path: Sequence[str],
                every_step: bool) -> list[tuple[str, str]]:
    """The steps of ``path`` (repeats dropped) that Nova never takes: with
    ``every_step``, each must be an edge of ``graph``; without, the second
    status must only be reachable from the first."""
    def allowed(status: str) -> frozenset[str]:
        if every_step:
            return graph.get(status, frozenset())
        return _reachable(graph, status)

    return [(a, b) for a, b in zip(path, path[1:], strict=False)
            if a != b and b not in allowed(a)]
