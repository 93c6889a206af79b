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
"""Watching moves through Nova's versioned notifications.

With ``[watch] source = notifications``, a run listens on the cloud's
notification bus (oslo.messaging, ``[watch] transport_url``) in a pool of its
own, so that Nova's other listeners (Watcher, Masakari, Ceilometer) still
get every message. When Nova says that a watched server's move ended
(:data:`END_EVENTS`, or any ``.error``), the poller reads that host's
migration records at once and the move completes, fails or is reverted as
its record says, then is verified as always; when Nova says a move
started (:data:`START_EVENTS`), the poller reads its record too, so its
timeouts count from its start. Polling stays as the safety
net, at ``[watch] fallback_interval``: a lost or late notification, a
listener that disconnects or a bus that is down never leaves a move
unwatched, only noticed later.

The listener subscribes when the run starts, before any task reads Nova's
state (a resumed run, or a conductor that takes a job over, too), so no end
falls between the two. A bus that cannot be reached then does not hold the
run: it starts after :data:`SUBSCRIBE_WAIT`, watching by polling, and
subscribes once the bus answers (oslo.messaging retries for as long as it
takes). A listener that loses the bus mid-run reconnects the same way.
"""

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: The versioned notifications that say a move ended, one way or another.
END_EVENTS = frozenset({
    "instance.live_migration_post.end",
    "instance.live_migration_rollback.end",
    "instance.live_migration_rollback_dest.end",
    "instance.live_migration_abort.end",
    "instance.live_migration_force_complete.end",
    "instance.resize_finish.end",
    "instance.resize_confirm.end",
    "instance.resize_revert.end",
    "instance.evacuate",
    "instance.rebuild.end",
    "instance.unshelve.end",
})

#: The versioned notifications that say a live migration succeeded (its
#: record says ``completed`` a moment later).
SUCCEEDED_EVENTS = frozenset({"instance.live_migration_post.end"})

#: The versioned notifications that say a move started: its record runs,
#: and its timeouts start counting once a poll sees it.
START_EVENTS = frozenset({
    "instance.live_migration_pre.start",
    "instance.resize_prep.start",
    "instance.rebuild.start",
})

#: Seconds a run waits to subscribe to a bus that does not answer before it
#: starts without (oslo.messaging's connection retries for ever).
SUBSCRIBE_WAIT = 10.0

#: What a notification of a server's move is handed to: the server's id,
#: the event type and whether it says the move ended; answers whether that
#: server is watched.
Notified = Callable[[str, str, bool], bool]


def is_end(event_type: str) -> bool:
    """Whether ``event_type`` says a move ended (or failed)."""
    return event_type in END_EVENTS or (
        event_type.startswith("instance.") and event_type.endswith(".error"))


def server_of(payload: Any) -> str | None:
    """The server a versioned notification is about (``nova_object.data``
    ``uuid`` of an instance payload), or None."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("nova_object.data")
    if not isinstance(data, dict):
        return None
    uuid = data.get("uuid")
    return uuid if isinstance(uuid, str) else None


class Endpoint:
    """The oslo.messaging endpoint: hands the end of a watched move to
    ``notified``; ignores everything else."""

    def __init__(self, notified: Notified):
        self._notified = notified
        #: Notifications that ended a watched move, for summaries and tests.
        self.ends_seen = 0

    def info(self, ctxt: Any, publisher_id: str, event_type: str,
             payload: Any, metadata: Any) -> None:
        self._handle(event_type, payload)

    def error(self, ctxt: Any, publisher_id: str, event_type: str,
              payload: Any, metadata: Any) -> None:
        self._handle(event_type, payload)

    def _handle(self, event_type: str, payload: Any) -> None:
        ended = is_end(event_type)
        if not ended and event_type not in START_EVENTS:
            return
        server_id = server_of(payload)
        if server_id is not None and self._notified(server_id, event_type,
                                                    ended) and ended:
            self.ends_seen += 1


def default_pool() -> str:
    """A pool of one run's own: it gets a copy of every message (runs of
    one process, as a conductor's jobs, each get theirs too)."""
    return (f"nova-migrate-flows-{socket.gethostname()}-{os.getpid()}-"
            f"{uuid.uuid4().hex[:8]}")


class Listener:
    """Listens to Nova's versioned notifications for one run."""

    def __init__(self, conf: cfg.ConfigOpts, notified: Notified,
                 subscribe_wait: float = SUBSCRIBE_WAIT):
        self._conf = conf
        self.endpoint = Endpoint(notified)
        self._subscribe_wait = subscribe_wait
        self._lock = threading.Lock()
        #: The subscribed oslo.messaging listener, until stopped.
        self._listener: Any = None
        self._transport: Any = None
        self._stopped = False
        #: The listener pool (its queue on the bus), and whether it is this
        #: process's own (deleted when the listener stops).
        self.pool = conf.watch.pool or default_pool()
        self._own_pool = not conf.watch.pool

    @property
    def listening(self) -> bool:
        """Whether the run is subscribed to the bus (oslo.messaging
        reconnects a subscription that loses the bus by itself)."""
        with self._lock:
            return self._listener is not None

    def start(self) -> None:
        """Subscribe, waiting at most ``subscribe_wait`` for the bus. A bus
        that cannot be reached is logged, not raised: polling watches the
        moves all the same."""
        # oslo.messaging only where notifications are used, on
        # oslo.service's threading backend (never eventlet).
        from oslo_service import backend as service_backend

        with contextlib.suppress(service_backend.exceptions
                                 .BackendAlreadySelected):
            service_backend.init_backend(
                service_backend.BackendType.THREADING)
        import oslo_messaging

        watch = self._conf.watch
        try:
            transport = self._transport = (
                oslo_messaging.get_notification_transport(
                    self._conf, url=watch.transport_url))
            targets = [oslo_messaging.Target(topic=topic,
                                             exchange=watch.exchange)
                       for topic in watch.topics]
            listener = oslo_messaging.get_notification_listener(
                transport, targets, [self.endpoint], executor="threading",
                pool=self.pool)
        except Exception as exc:  # noqa: BLE001 - polling is the safety net
            self._cannot_listen(exc)
            return
        settled = threading.Event()
        threading.Thread(target=self._subscribe, args=(listener, settled),
                         name="notification-subscriber", daemon=True).start()
        if not settled.wait(self._subscribe_wait):
            LOG.warning("Nova's notification bus does not answer yet: "
                        "watching the moves by polling every %.0f s until "
                        "it does", watch.fallback_interval)

    def _subscribe(self, listener: Any, settled: threading.Event) -> None:
        """Start ``listener`` (it blocks while the bus cannot be reached),
        then set ``settled``; stop it at once if the run ended meanwhile."""
        try:
            self._start(listener)
        finally:
            settled.set()

    def _start(self, listener: Any) -> None:
        try:
            listener.start()
        except Exception as exc:  # noqa: BLE001 - polling is the safety net
            self._cannot_listen(exc)
            return
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._listener = listener
        if stopped:
            _stop(listener)
            self._forget_pool()
            return
        watch = self._conf.watch
        LOG.info("Listening to Nova's notifications (topics %s, exchange "
                 "%s); polling every %.0f s as a safety net",
                 ", ".join(watch.topics), watch.exchange,
                 watch.fallback_interval)

    def _cannot_listen(self, exc: Exception) -> None:
        LOG.warning("Cannot listen to Nova's notifications (%s): "
                    "watching the moves by polling every %.0f s",
                    exc, self._conf.watch.fallback_interval)

    def stop(self) -> None:
        """Stop listening. A subscription still waiting for the bus is
        stopped by its own thread once it gets through."""
        with self._lock:
            self._stopped = True
            listener, self._listener = self._listener, None
        if listener is not None:
            _stop(listener)
            self._forget_pool()

    def _forget_pool(self) -> None:
        """Delete the queue of this process's own pool from the bus: once
        nobody consumes it, RabbitMQ would keep it and pile every
        notification of the cloud up in it. (A pool named in ``[watch]
        pool`` is the operator's: it stays.)"""
        if not self._own_pool or self._transport is None:
            return
        try:
            # oslo.messaging's own connection (its hosts, credentials and
            # TLS options); no wait for the answer, which its heartbeat
            # thread may read first.
            with self._transport._driver._get_connection() as connection:
                connection.connection.channel.queue_delete(
                    queue=self.pool, nowait=True)
        except Exception as exc:  # noqa: BLE001 - the run is over anyway
            LOG.warning("Could not delete this run's notification queue %s "
                        "(%s); delete it with 'rabbitmqctl delete_queue %s'",
                        self.pool, exc, self.pool)
            return
        LOG.debug("Deleted this run's notification queue %s", self.pool)


def _stop(listener: Any) -> None:
    try:
        listener.stop()
        listener.wait()
    except Exception as exc:  # noqa: BLE001 - the run is over anyway
        LOG.warning("Stopping the notification listener failed: %s", exc)
