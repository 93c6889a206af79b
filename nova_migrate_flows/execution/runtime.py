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
"""Everything a run needs at run time that is never persisted.

Tasks receive the :class:`Runtime` as the transient ``runtime`` argument
(injected by the runner with ``transient=True``), so connections, threads
and credentials stay out of flow details and job details.
"""

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import base, models
from nova_migrate_flows.execution import notifications, reads
from nova_migrate_flows.execution import poller as poller_mod
from nova_migrate_flows.execution import throttle as throttle_mod

LOG = logging.getLogger(__name__)

#: With ``[watch] source = notifications``: how long the polls after the
#: ends Nova tells wait for other ends to join them (one read serves all).
NOTIFIED_GATHER = 1.0


Listener = Callable[[str, dict[str, Any]], None]

class Events:
    """A tiny publish/subscribe bus for progress and outcomes."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(self, event: str, **data: Any) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, data)
            except Exception:  # noqa: BLE001 - a display must not kill a run
                LOG.exception("Listener failed on %s", event)


class CloudSnapshot:
    """Services, capacities and server groups, read once per run and shared
    by checks. Reads of different things run at once (the checks of a
    preflight run in parallel); each thing is read once."""

    def __init__(self, compute: base.Compute,
                 services: list[models.Service] | None = None):
        self._compute = compute
        self._lock = threading.Lock()
        #: One per thing read, held while it is read.
        self._reading: collections.defaultdict[str, threading.Lock] = (
            collections.defaultdict(threading.Lock))
        self._services: dict[str, models.Service] | None = (
            {s.host: s for s in services} if services is not None else None
        )
        self._capacities: dict[str, models.HostCapacity] | None = None
        self._flavors: dict[str, models.Flavor] = {}
        self._groups: list[models.ServerGroup] | None = None
        self._others: dict[str, models.Server | None] = {}

    def _reader(self, what: str) -> threading.Lock:
        with self._lock:
            return self._reading[what]

    def services(self) -> dict[str, models.Service]:
        with self._reader("services"):
            services = self._services
            if services is None:
                services = {s.host: s for s in self._compute.list_services()}
                with self._lock:
                    self._services = services
            return services

    def capacities(self) -> dict[str, models.HostCapacity]:
        with self._reader("capacities"):
            if self._capacities is None:
                self._capacities = self._compute.host_capacities()
            return self._capacities

    def server_groups(self) -> list[models.ServerGroup]:
        """Every server group of the cloud: one read per run."""
        with self._reader("groups"):
            if self._groups is None:
                self._groups = self._compute.list_server_groups()
            return self._groups

    def other_server(self, server_id: str) -> models.Server | None:
        """A server the run does not move (another member of a server
        group), read once; None when it is gone."""
        with self._lock:
            if server_id in self._others:
                return self._others[server_id]
        try:
            server: models.Server | None = self._compute.get_server(
                server_id)
        except exceptions.NotFound:
            server = None
        with self._lock:
            self._others[server_id] = server
        return server

    def flavor(self, ref: str) -> models.Flavor:
        with self._reader(f"flavor {ref}"):
            if ref not in self._flavors:
                self._flavors[ref] = self._compute.get_flavor(ref)
            return self._flavors[ref]

    def forget_services(self) -> None:
        """Read the services again next time (after changing one)."""
        with self._lock:
            self._services = None

    def service_changed(self, host: str, **changes: Any) -> None:
        """Remember a change this run made to the service of ``host``
        (Nova accepted it), so that later tasks need not read it again."""
        with self._lock:
            if self._services is not None and host in self._services:
                self._services[host] = dataclasses.replace(
                    self._services[host], **changes)


class Runtime:
    """The live objects of one run: Nova access, poller, throttle, flags."""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        compute: base.Compute,
        request: request_mod.MoveRequest,
        *,
        resuming: bool = False,
        live_progress: bool = False,
        services: list[models.Service] | None = None,
    ):
        self.conf = conf
        self.compute = compute
        self.request = request
        self.resuming = resuming
        self.events = Events()
        self.cloud = CloudSnapshot(compute, services)
        self.throttle = throttle_mod.Throttle(
            {
                throttle_mod.LIVE: request.max_concurrent,
                throttle_mod.COLD: request.max_concurrent_cold,
            },
            request.max_concurrent_total,
            ahead={throttle_mod.LIVE: request.pipeline_depth},
        )
        migration = conf.migration
        progress_every = None
        if not live_progress and migration.progress_timeout:
            progress_every = max(
                migration.poll_interval, migration.progress_timeout / 5
            )
        self._target_named = threading.Event()
        interval, longest = migration.poll_interval, \
            migration.poll_interval_max
        self.listener: notifications.Listener | None = None
        gather = poller_mod.GATHER
        confirm_within = None
        if conf.watch.source == "notifications":
            # Nova says when a move ends: polls are the safety net, and
            # the polls after the ends it tells gather longer.
            interval = max(interval, conf.watch.fallback_interval)
            longest = max(longest or interval, interval)
            progress_every = max(progress_every or 0.0, interval)
            gather = NOTIFIED_GATHER
            confirm_within = conf.watch.confirm_within or None
        self.poller = poller_mod.MigrationPoller(
            compute,
            writer=self,
            poll_interval=interval,
            poll_interval_min=migration.poll_interval_min,
            poll_interval_max=longest,
            progress_interval=progress_every,
            on_progress=self._progress if live_progress else None,
            gather=gather,
            foresee=self._foresee,
            abort_retry_after=migration.abort_retry_interval,
            confirm_within=confirm_within,
            starved=self._starved,
        )
        self.server_reads = reads.ServerReads(
            compute, busy=self.poller.watching)
        if conf.watch.source == "notifications":
            self.listener = notifications.Listener(conf,
                                                   self.poller.notified)
        self._stopping = threading.Event()
        self.stop_reason: str | None = None
        self._interruption = False
        self._failures = 0
        #: Each server's place in its host's plan (the order its move
        #: waits for a throttle slot in).
        self._places: dict[str, int] = {}
        #: By source host, the live migrations of its plans that have not
        #: started yet.
        self._to_start: dict[str, set[str]] = {}
        self._places_lock = threading.Lock()
        self.started = time.time()
        self.outcomes: collections.OrderedDict[str, dict[str, Any]] = (
            collections.OrderedDict()
        )

    def _foresee(self) -> bool:
        """Whether the poller polls when a migration should end: unless
        Nova's notifications say so (while the run listens to them)."""
        return self.listener is None or not self.listener.listening

    # -- life cycle --------------------------------------------------------

    def before_write(self) -> None:
        """Name in the log, once, the cloud that this run changes (before
        its first write: a refused or dry run changes nothing)."""
        if not self._target_named.is_set():
            self._target_named.set()
            LOG.info("Acting on %s", _named_target(self.compute.target()))

    def start(self) -> None:
        # Subscribed before any task reads Nova: no end is missed between.
        if self.listener is not None:
            self.listener.start()
        self.poller.start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.poller.stop()

    # -- stopping ----------------------------------------------------------

    def stop(self, reason: str, abort_in_flight: bool, *,
             interruption: bool = True) -> None:
        """Start no new migration; abort those in flight if asked.

        An interruption (a signal, a caller's stop) ends the run
        "interrupted"; a stop of the run's own (``--stop-on-failure``)
        does not.
        """
        if not self._stopping.is_set():
            self.stop_reason = reason
            self._interruption = interruption
            self._stopping.set()
            LOG.warning("Stopping: %s; no new migration will start", reason)
        self.throttle.wake()
        if abort_in_flight:
            count = self.poller.abort_all(reason)
            if count:
                LOG.warning("Aborting %d live migration(s) in flight", count)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def interrupted(self) -> bool:
        """Whether a signal (not --stop-on-failure) stopped the run."""
        return self.stopping and self._interruption

    def why_not_start(self) -> str | None:
        """Why a migration that has not started must not start, or None."""
        if self._stopping.is_set():
            return f"{constants.NOT_STARTED}: {self.stop_reason}"
        return None

    def place_in_plan(self, plan: Mapping[str, Any], server_id: str) -> int:
        """Where ``server_id`` comes in ``plan`` (each host's flow has
        the plan of its own servers), read once per plan."""
        with self._places_lock:
            if server_id not in self._places:
                for index, known in enumerate(plan):
                    self._places.setdefault(known, index)
            return self._places.get(server_id, 0)

    def starts(self, host: str, server_id: str,
               planned: Callable[[], Iterable[str]]) -> None:
        """``server_id``, of ``host``'s plan, starts its move (or adopts
        one); ``planned``: the live migrations of that plan, asked for by
        the first call of the host."""
        with self._places_lock:
            if host not in self._to_start:
                self._to_start[host] = set(planned())
            self._to_start[host].discard(server_id)

    def _starved(self, host: str) -> bool:
        """Whether live migrations of ``host`` are yet to start while one
        of its slots is free and none waits for it: their lanes hold them
        behind moves that ended but wait for their records to be read."""
        with self._places_lock:
            left = bool(self._to_start.get(host))
        return (left and not self.stopping
                and self.throttle.free(host, throttle_mod.LIVE)
                and not self.throttle.waiting(host, throttle_mod.LIVE))

    def server_failed(self) -> None:
        self._failures += 1
        if self.request.stop_on_failure and not self.stopping:
            self.stop("a server failed and --stop-on-failure is set", False,
                      interruption=False)

    # -- reporting ---------------------------------------------------------

    def _progress(self, watch: poller_mod.Watch) -> None:
        if watch.migration is not None:
            self.events.emit(
                "migration.progress",
                server_id=watch.server_id,
                migration=watch.migration.to_dict(),
            )

    def record_outcome(self, outcome: dict[str, Any]) -> None:
        self.outcomes[outcome["server"]] = outcome
        self.events.emit("server.done", outcome=outcome)


def _named_target(target: dict[str, Any]) -> str:
    """The cloud acted on, in words for the log."""
    name = (f"cloud {target['cloud']}" if target.get("cloud")
            else "the cloud of the [nova] options")
    where = target.get("clouds_yaml") or target.get("auth_url")
    if where:
        name += f" ({where})"
    return f"{name}, compute endpoint {target.get('compute_endpoint')}"
