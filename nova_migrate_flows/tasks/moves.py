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
"""What every move of a server shares: starting it safely, and waiting.

:class:`StartMove` asks Nova to move a server exactly once: it adopts a
move that already exists (a rerun, a resume, a request whose answer was
lost), never repeats a write blindly, and waits out HTTP 409 within bounds.
:class:`WaitForMove` waits on the run's one poller, explains a failure with
Nova's own instance-action events, and hands the verifications the server
as it is after the move.
"""

import time
from collections.abc import Callable
from typing import Any, ClassVar

from oslo_log import log as logging
from taskflow.types import failure as ft

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import base as compute_base
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import poller as poller_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.execution import throttle as throttle_mod
from nova_migrate_flows.execution import writes
from nova_migrate_flows.moves import registry
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)

GIB = 1024 ** 3
#: How long a server may keep a task_state after its migration ended.
SETTLE_TIMEOUT = 30.0
#: How long the migration record of a server Nova marked busy may take to
#: show up (the conductor writes it after the API answered).
RECORD_WAIT = 30.0
#: How long the reason of a failure may wait for the instance-action event
#: that gives it to finish, and how often it is read meanwhile.
EVENT_WAIT = 10.0
EVENT_POLL = 0.5
#: Why a server deleted after the plan was made was not moved.
GONE = "gone: it was deleted after the plan was made; nothing to move"
#: Why a server deleted while it moved is not reported moved.
GONE_WHILE_MOVING = ("gone: it was deleted while it moved; nothing left to "
                     "verify")


class MoveTask(base.BaseTask):
    """Base of the tasks of a kind of move.

    The flows build each of a kind's tasks with the server's id and the
    kind's name (see :class:`~nova_migrate_flows.moves.base.MoveKind`); a
    built-in task knows its kind when none is given.
    """

    #: The kind a task belongs to when it is built without one.
    move_kind: ClassVar[str | None] = None

    def __init__(self, server_id: str, kind: str | None = None,
                 **kwargs: Any):
        name = kind or self.move_kind
        if name is None:
            raise ValueError(f"{type(self).__name__} needs the kind of move")
        self.move = registry.get(name)
        super().__init__(**kwargs)

    @property
    def action(self) -> str:
        """The kind's name, as the plan and the reports say it."""
        return self.move.name

    @staticmethod
    def gone(runtime: runtime_mod.Runtime,
             server_id: str) -> dict[str, Any] | None:
        """The ``started`` of a server Nova no longer has (deleted after
        the plan was made), or None when it still exists."""
        try:
            runtime.compute.get_server(server_id)
        except exceptions.NotFound:
            LOG.warning("Server %s no longer exists: it was deleted after "
                        "the plan was made", server_id)
            return {"not_moved": GONE, "failed": False, "stopped": False}
        return None

    @property
    def migration_type(self) -> str:
        """Nova's migration_type of the record this kind of move makes."""
        if self.move.migration_type is None:
            raise TypeError(f"{type(self).__name__} watches migration "
                            f"records; Nova records none for a "
                            f"{self.move.name}")
        return self.move.migration_type


class StartTask(MoveTask):
    """Base of a kind's start task: it reads ``runtime``, ``server_id``,
    ``plan`` and ``target`` (``target[SERVER]``, from the retry controller)
    and provides ``started[SERVER]``."""

    def __init__(self, server_id: str, kind: str | None = None,
                 **kwargs: Any):
        super().__init__(
            server_id, kind,
            name=constants.start_atom(kind or str(self.move_kind),
                                      server_id),
            provides=constants.server_key("started", server_id),
            rebind={"target": constants.server_key("target", server_id)},
            inject={"server_id": server_id},
            **kwargs,
        )

    @staticmethod
    def given_up(target: dict[str, Any]) -> dict[str, Any] | None:
        """The ``started`` of a server whose targets are used up (the
        retry controller gave up on it), or None."""
        if not target.get("give_up"):
            return None
        return {"not_moved": target.get("reason") or "failed",
                "failed": True, "stopped": bool(target.get("stopped"))}

    def take_slot(self, runtime: runtime_mod.Runtime,
                  server: models.Server,
                  entry: dict[str, Any] | None = None,
                  order: int = 0,
                  ) -> dict[str, Any] | None:
        """Wait for a throttle slot of the kind's pool on the server's
        host (and, when the plan ``entry`` names exclusive groups, for no
        other member of them to be moving), after the moves of the host
        waiting with a lower ``order``; None once it is held, or the
        ``started`` of a server that the run's stop keeps from moving."""
        reason = runtime.why_not_start()
        if reason is None and not runtime.throttle.acquire(
            server.id, server.host or "", self.move.throttle_pool,
            should_stop=lambda: runtime.stopping,
            exclusive=(entry or {}).get("exclusive") or (),
            order=order,
        ):
            reason = runtime.why_not_start()
        if reason is None:
            return None
        return {"not_moved": reason, "failed": False, "stopped": True}


class StartMove(StartTask):
    """Base of the start tasks of the moves Nova records: they adopt a
    move already under way, and the run's poller watches its record."""

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        plan: dict[str, Any],
        target: dict[str, Any],
    ) -> dict[str, Any]:
        entry = plan[server_id]
        server = models.Server.from_dict(entry["server"])
        gave_up = self.given_up(target)
        if gave_up is not None:
            return gave_up
        runtime.starts(server.host or "", server_id,
                       lambda: live_moves(plan))
        existing = None
        try:
            if runtime.resuming or entry.get("adopt"):
                existing = self.find_existing(runtime, server, entry)
        except exceptions.NotFound:
            gone = self.gone(runtime, server_id)
            if gone is not None:
                return gone
            raise
        if existing is not None:
            LOG.info("Adopting %s %s of server %s (%s)", self.action,
                     existing.id, server.name, server_id)
            runtime.throttle.claim(server_id, server.host or "",
                                   self.move.throttle_pool,
                                   exclusive=entry.get("exclusive") or ())
            return self._watched(runtime, server, entry,
                                 self._started(server, None, existing, True))
        stopped = self.take_slot(
            runtime, server, entry,
            order=runtime.place_in_plan(plan, server_id))
        if stopped is not None:
            return stopped
        try:
            answer = self._send_once(runtime, server, entry, target["host"])
        except exceptions.NotFound:
            runtime.throttle.release(server_id)
            gone = self.gone(runtime, server_id)
            if gone is not None:
                return gone
            raise
        except BaseException:
            runtime.throttle.release(server_id)
            raise
        if isinstance(answer, models.Migration):
            started = self._started(server, None, answer, True)
        else:
            started = self._started(server, answer, None, False,
                                    requested_host=target["host"])
        runtime.events.emit("server.started", server_id=server_id,
                            name=server.name, action=self.action,
                            source=server.host, target=target["host"])
        return self._watched(runtime, server, entry, started)

    def _watched(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        started: dict[str, Any],
    ) -> dict[str, Any]:
        """Have the poller watch the move right away, so its throttle slot
        comes back when it ends whenever the waiting task gets to run."""
        watch_move(runtime, self.migration_type, self.move.throttle_pool,
                   server, entry, started)
        return started

    def _started(
        self,
        server: models.Server,
        answer: compute_base.ActionResult | None,
        migration: models.Migration | None,
        adopted: bool,
        requested_host: str | None = None,
    ) -> dict[str, Any]:
        return {
            "source": server.host,
            "requested_host": requested_host,
            "request_id": answer.request_id if answer else None,
            "accepted_at": answer.accepted_at if answer else None,
            "migration": migration.to_dict() if migration else None,
            "adopted": adopted,
            "started_at": time.time(),
        }

    def _send_once(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        host: str | None,
    ) -> compute_base.ActionResult | models.Migration:
        """Send the request; adopt what exists instead of sending twice."""
        return writes.send_once(
            runtime, f"the {self.action} of {server.id}",
            lambda: self.send(runtime, server, entry, host),
            lambda: self.find_existing(runtime, server, entry),
        )

    def send(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
        host: str | None,
    ) -> compute_base.ActionResult:
        """Ask Nova for the move."""
        raise NotImplementedError

    def find_existing(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        entry: dict[str, Any],
    ) -> models.Migration | None:
        """The move of ``server`` already under way or done, if any.

        Nova marks the server busy as it accepts a move, and its conductor
        records the migration a moment later: the record of a busy (or
        moved) server is waited for, RECORD_WAIT seconds at most. A move
        this run started is recorded after the server as the plan read it
        last changed (Nova's clock); an older record of the host is an
        earlier move's, not adopted (unless the plan adopts the move that
        was under way as it was made).
        """
        current = runtime.compute.get_server(server.id)
        moved = current.host != server.host
        if not moved and not self.move.busy(current):
            return None
        started = None if entry.get("adopt") else models.parse_time(
            server.updated)
        deadline = time.monotonic() + RECORD_WAIT
        delay = 0.1
        while True:
            records = runtime.compute.list_migrations(
                server_id=server.id, migration_type=self.migration_type
            )
            for record in sorted(records, key=lambda r: r.id, reverse=True):
                created = models.parse_time(record.created_at)
                if started is None or created is None or created >= started:
                    if record.source_compute == server.host:
                        return record
            if time.monotonic() + delay > deadline:
                LOG.warning("Server %s is busy (%s) but Nova recorded no %s "
                            "of it", server.id, current.task_state,
                            self.migration_type)
                return None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def revert(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        result: Any,
        **kwargs: Any,
    ) -> None:
        runtime.throttle.release(server_id)
        if isinstance(result, ft.Failure) or not result or result.get(
                "not_moved"):
            return
        LOG.warning("Reverting the %s of server %s", self.action, server_id)
        self.undo(runtime, server_id, result,
                  list((kwargs.get("flow_failures") or {}).values()))

    def undo(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        started: dict[str, Any],
        failures: list[ft.Failure],
    ) -> None:
        """Undo what can be undone of a move this task started; ``failures``
        are what caused the revert."""
        raise NotImplementedError


class WaitTask(MoveTask):
    """Base of a kind's wait task: it reads ``runtime``, ``server_id``,
    ``plan`` and ``started`` (``started[SERVER]``) and provides
    ``moved[SERVER]``: a :class:`~nova_migrate_flows.tasks.base.Moved` as a
    dict."""

    def __init__(self, server_id: str, kind: str | None = None,
                 **kwargs: Any):
        super().__init__(
            server_id, kind,
            name=constants.wait_atom(kind or str(self.move_kind), server_id),
            provides=constants.server_key("moved", server_id),
            rebind={"started": constants.server_key("started", server_id)},
            inject={"server_id": server_id},
            **kwargs,
        )

    @staticmethod
    def not_moved(server_id: str, entry: dict[str, Any],
                  started: dict[str, Any]) -> dict[str, Any] | None:
        """The ``moved`` of a server whose move did not start, or None."""
        if not started.get("not_moved"):
            return None
        return base.Moved(
            server_id=server_id,
            action=entry["action"],
            source=entry["server"].get("host"),
            before=entry["server"],
            not_moved=started["not_moved"],
            failed=bool(started.get("failed")),
            stopped=bool(started.get("stopped")),
        ).to_dict()

    def revert(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to undo: waiting changed nothing."""


class WaitForMove(WaitTask):
    """Base of the tasks that wait for a move Nova records to end."""

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        server_id: str,
        plan: dict[str, Any],
        started: dict[str, Any],
    ) -> dict[str, Any]:
        entry = plan[server_id]
        skipped = self.not_moved(server_id, entry, started)
        if skipped is not None:
            return skipped
        server = models.Server.from_dict(entry["server"])
        watch = runtime.poller.take(server_id)
        if watch is None:
            # A resumed run: the start task ran in an earlier process.
            watch = watch_move(
                runtime, self.migration_type, self.move.throttle_pool,
                server, entry, started
            )
            runtime.poller.take(server_id)
        try:
            migration = watch.wait()
        except exceptions.MigrationFailed as exc:
            if self.gone(runtime, server_id) is not None:
                return self._gone_while_moving(server_id, entry, started)
            raise self._explain(runtime, server, started, watch, exc) from exc
        try:
            after = self.settle(runtime, server_id, watch)
        except exceptions.NotFound:
            return self._gone_while_moving(server_id, entry, started)
        note = None
        if watch.force_completed:
            note = f"force-completed after its {watch.timed_out}"
        return base.Moved(
            server_id=server_id,
            action=entry["action"],
            source=started["source"],
            before=entry["server"],
            after=after.to_dict(),
            migration=migration.to_dict(),
            requested_host=started.get("requested_host"),
            request_id=started.get("request_id"),
            started_at=started.get("started_at"),
            note=note,
        ).to_dict()

    @staticmethod
    def _gone_while_moving(server_id: str, entry: dict[str, Any],
                           started: dict[str, Any]) -> dict[str, Any]:
        return base.Moved(
            server_id=server_id,
            action=entry["action"],
            source=started["source"],
            before=entry["server"],
            not_moved=GONE_WHILE_MOVING,
        ).to_dict()

    def settle(
        self, runtime: runtime_mod.Runtime, server_id: str,
        watch: poller_mod.Watch | None = None,
    ) -> models.Server:
        """The server once Nova has cleared its task_state (first read
        with the reads of other moves that ended with it)."""
        return wait_for_server(
            runtime, server_id, lambda s: not s.task_state, SETTLE_TIMEOUT,
            "to clear its task_state", fail=False,
            first=lambda: runtime.server_reads.get(
                server_id, watch.since if watch else None),
        )

    def _explain(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        started: dict[str, Any],
        watch: poller_mod.Watch,
        exc: exceptions.MigrationFailed,
    ) -> exceptions.MigrationFailed | exceptions.NoValidHost:
        """The failure, with where to look: Nova's reason and the hosts."""
        migration = watch.migration
        dest = migration.dest_compute if migration else None
        parts = [str(exc)]
        reason = diagnose(runtime, server.id, started.get("request_id"))
        if reason:
            parts.append(f"Nova: {reason}")
        parts.append(
            f"server {server.id}, source {started['source']}, destination "
            f"{dest or started.get('requested_host') or 'scheduler'}"
            + (f", request {started['request_id']}"
               if started.get("request_id") else "")
            + "; search both hosts' nova-compute logs for the server id"
        )
        message = "; ".join(parts)
        if reason and "no valid host" in reason.lower():
            return exceptions.NoValidHost(message)
        return type(exc)(message, server.id, exc.migration_id, exc.status)



def watch_move(
    runtime: runtime_mod.Runtime,
    migration_type: str,
    pool: str,
    server: models.Server,
    entry: dict[str, Any],
    started: dict[str, Any],
) -> poller_mod.Watch:
    """Register the move ``started`` describes with the run's poller (its
    slot is of the throttle's ``pool``)."""
    adopted = (
        models.Migration.from_dict(started["migration"])
        if started.get("migration") else None
    )
    def ended(watch: poller_mod.Watch) -> None:
        if watch.error is not None and runtime.request.stop_on_failure:
            # Stop before the slot lets the next migration of the host go.
            runtime.server_failed()
        runtime.throttle.release(server.id)

    def handed(watch: poller_mod.Watch) -> None:
        runtime.throttle.handed(watch.host, pool)

    def succeeded(watch: poller_mod.Watch) -> None:
        runtime.throttle.release(server.id)

    return runtime.poller.watch(
        server.id,
        started["source"],
        migration_type,
        accepted_at=started.get("accepted_at"),
        migration=adopted,
        timeouts=timeouts_for(runtime, migration_type, server, entry),
        on_final=ended,
        on_handed=handed,
        on_succeeded=succeeded,
    )


def live_moves(plan: dict[str, Any]) -> list[str]:
    """The servers ``plan`` live-migrates (a slot of the throttle's live
    pool each)."""
    return [server_id for server_id, entry in plan.items()
            if entry.get("action") not in (None, constants.SKIP)
            and registry.get(entry["action"]).throttle_pool
            == throttle_mod.LIVE]


def timeouts_for(
    runtime: runtime_mod.Runtime,
    migration_type: str,
    server: models.Server,
    entry: dict[str, Any],
) -> poller_mod.Timeouts:
    """The limits of one move: live migrations scale with their size."""
    migration = runtime.conf.migration
    if migration_type != constants.LIVE_MIGRATION:
        return poller_mod.Timeouts(
            completion=float(migration.operation_timeout), action="fail"
        )
    flavor = server.flavor_info
    data = flavor.ram_mb * 1024 ** 2
    block = entry.get("block_migration")
    if block is True or (block == "auto"
                         and migration.instance_storage == "local"):
        # Nova copies the disks too (on local storage, "auto" means so).
        data += (flavor.disk_gb + flavor.ephemeral_gb) * GIB
    completion = max(
        float(migration.completion_timeout_min),
        migration.completion_timeout_per_gib * data / GIB,
    )
    return poller_mod.Timeouts(
        completion=completion,
        progress=float(migration.progress_timeout) or None,
        action=migration.timeout_action,
    )


def wait_for_server(
    runtime: runtime_mod.Runtime,
    server_id: str,
    ready: Callable[[models.Server], bool],
    timeout: float,
    what: str,
    fail: bool = True,
    first: Callable[[], models.Server] | None = None,
) -> models.Server:
    """The server once ``ready`` holds for it.

    Reads it with ``first`` (default: ``GET /servers/{id}``), then polls
    ``GET /servers/{id}`` with a growing interval. After ``timeout``
    seconds, raises MigrationFailed (or, with ``fail`` False, returns the
    server as it is).
    """
    deadline = time.monotonic() + timeout
    delay = 0.1
    server = first() if first else runtime.compute.get_server(server_id)
    while True:
        if ready(server):
            return server
        if time.monotonic() > deadline:
            if not fail:
                return server
            raise exceptions.MigrationFailed(
                f"server {server_id} did not come {what} in {timeout:.0f} s"
                f" (status {server.status}, task_state {server.task_state})",
                server_id,
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
        server = runtime.compute.get_server(server_id)


def diagnose(
    runtime: runtime_mod.Runtime, server_id: str, request_id: str | None
) -> str | None:
    """Nova's reason for a failed action, from its instance-action events
    (waiting up to :data:`EVENT_WAIT` seconds for an event still running:
    Nova may mark the migration failed just before it finishes the event
    that says why)."""
    deadline = time.monotonic() + EVENT_WAIT
    while True:
        try:
            action = _action_of(runtime, server_id, request_id)
        except exceptions.NotAuthorized:
            return ("instance-action events are not visible to these "
                    "credentials")
        except exceptions.ComputeError as exc:
            LOG.debug("Could not read the instance actions of %s: %s",
                      server_id, exc)
            return None
        if action is None:
            return None
        running = any(not e.get("finish_time") for e in action.events)
        if action.failed_events or not running or (
                time.monotonic() >= deadline):
            break
        time.sleep(EVENT_POLL)
    failed = action.failed_events
    if not failed:
        return action.message
    event = failed[-1]
    detail = (event.details or event.traceback or "").strip()
    detail = detail.splitlines()[-1] if detail else "Error"
    where = f" on {event.host}" if event.host else ""
    return f"{event.event}{where}: {detail}"


def _action_of(
    runtime: runtime_mod.Runtime, server_id: str, request_id: str | None
) -> models.InstanceAction | None:
    """The instance action of ``request_id``, else the server's last."""
    action = None
    if request_id:
        action = runtime.compute.instance_action(server_id, request_id)
    if action is None:
        actions = runtime.compute.instance_actions(server_id)
        if not actions:
            return None
        action = runtime.compute.instance_action(
            server_id, actions[0].request_id
        )
    return action
