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
"""B1: drain speed and API economy against a real Nova (the sandbox).

Hosts of 5 servers each are emptied with live migrations of 2 s, Nova's
default of one live migration at a time per source host. Each contender
starts from the same state (fresh servers on the source hosts, every
service enabled), with a pre-authenticated connection whose endpoints were
discovered already, and the sandbox counts the compute API requests it
sends:

* ``nova-migrate-flows`` (``+sqlite``: recording the run as the command
  line does): :class:`~nova_migrate_flows.engine.runner.Runner` running
  ``host-evacuate-live`` of the source hosts, every server verified;
* ``nova-queue``: every live migration posted at once, as the nova CLI's
  ``host-evacuate-live`` does, then ``GET /os-migrations`` every 0.25 s
  until all completed: Nova's own speed, the floor (nothing verified);
* ``one-by-one``: ``openstack server migrate --live-migration --wait`` in
  a shell loop: look the server up, migrate it, poll it every 2 s until
  ACTIVE, then the next. As that loop does, a server whose request Nova
  refuses (``400 No valid host was found``: the command exits 1) is left
  where it is and the loop goes on with the next one; the row's
  ``landed`` then shows fewer servers and a note quotes Nova's answer and
  what its scheduler logged about it (which filter rejected which host),
  instead of the whole benchmark stopping on the exception;
* ``nova-migrate-flows+notifications`` (with ``run.py --notifications
  TRANSPORT_URL``, when the sandbox's Nova sends its versioned
  notifications to that bus): the runner as above with ``[watch] source =
  notifications``, its polls only the safety net.

Each row also gives the compute API requests per second the contender put
on Nova per source host while it ran (``req_per_s_per_host``), and the
notes scale that to a drain of 200 hosts at once, for each way of
watching.

The two baselines are given the source hosts disabled before their clock
starts (as an operator does first), so that Nova's scheduler never picks a
host being emptied; nova-migrate-flows disables them itself.

The sandbox's own log tells when Nova ran each migration, which splits a
contender's time into the wait before the first migration ran, the
migrations (with Nova idle between them), and the tail after the last one
ended.
"""

import contextlib
import datetime
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import common
import openstack
import openstack.config
import openstack.connection
from oslo_config import cfg

from nova_migrate_flows import opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import connection, nova
from nova_migrate_flows.engine import persistence
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.sandbox import constants, control

GOAL_RATIO = 1.05
GOAL_REQUESTS = 4.0
#: Compute requests per server with ``[watch] source = notifications``.
GOAL_NOTIFIED_REQUESTS = 2.5
#: Source hosts of the region-wide drain the notes scale the rates to.
REGION_HOSTS = 200
#: (source hosts, servers per host).
FULL = [(2, 5), (4, 5)]
QUICK = [(2, 2)]
#: Hosts that take the servers, besides the sources.
TARGETS = 3
DURATION = 2.0
QUEUE_POLL = 0.25
#: openstackclient 10.5's ``--wait`` sleeps 5 s between two looks
#: (``osc_lib.utils.wait_for_status``); the issue asks for 2 s.
LOOP_POLL = 2.0
#: Seconds any contender may take before it is stopped.
DEADLINE = 600.0
NMF = "nova-migrate-flows"
NMF_SQLITE = "nova-migrate-flows+sqlite"
QUEUE = "nova-queue"
LOOP = "one-by-one"
NMF_NOTIFIED = "nova-migrate-flows+notifications"
CONTENDERS = (QUEUE, NMF, NMF_SQLITE, LOOP)

#: What Nova's scheduler and conductor log when they find no host (the
#: sandbox logs at INFO): quoted in the notes when a request is refused.
_NO_HOST_LINE = re.compile(
    r"has not been heard from|Filter \S+ returned 0 hosts|Filtering "
    r"removed all hosts|Got no allocation candidates|NoValidHost|No valid "
    r"host")


def computes(quick: bool) -> int:
    """Compute hosts the sandbox needs for B1."""
    return max(h for h, _ in (QUICK if quick else FULL)) + TARGETS


# -- one contender -------------------------------------------------------


class Bench:
    """The sandbox, a warm connection and the state every run starts
    from."""

    def __init__(self, sandbox: control.SandboxInfo,
                 notifications: str | None = None):
        self.sandbox = sandbox
        self.notifications = notifications
        self.client = control.SandboxClient(sandbox.state_dir)
        config = openstack.config.OpenStackConfig(
            config_files=[sandbox.clouds_yaml], vendor_files=[])
        self.conn = openstack.connection.Connection(
            config=config.get_one(cloud=constants.CLOUD_ADMIN))
        # As the command line does: a pooled connection per thread.
        connection.size_pool(self.conn, connection.pool_size(make_conf()))
        # Authenticate and discover every endpoint now, for everyone.
        nova.NovaCompute(self.conn).host_capacities()
        list(self.conn.compute.migrations(limit=1))

    def reset(self, sources: list[str], per_host: int,
              disable: bool) -> dict[str, str]:
        """Fresh servers on ``sources``, every service enabled and up (the
        sources disabled if asked); ``{server id: source host}``."""
        compute = self.conn.compute
        old = list(compute.servers(all_projects=True))
        for server in old:
            compute.delete_server(server)
        for server in old:
            compute.wait_for_delete(server, interval=0.2, wait=120)
        for service in compute.services(binary="nova-compute"):
            if service.status != "enabled":
                compute.enable_service(service)
        # Every compute service up too (each reports every second), so
        # that no run starts with a host the scheduler deems down.
        deadline = time.monotonic() + 30
        while any(service.state != "up" for service in compute.services(
                binary="nova-compute")) and time.monotonic() < deadline:
            time.sleep(0.5)
        self.client.set_defaults(live_migration_duration=DURATION,
                                 live_migration_result="success")
        placed = {}
        for host in sources:
            for server in control.boot(self.sandbox.state_dir, host,
                                       per_host):
                placed[server["id"]] = host
        if disable:
            for service in compute.services(binary="nova-compute"):
                if service.host in sources:
                    compute.disable_service(
                        service, disabled_reason="benchmark baseline")
        return placed

    def landed(self, placed: dict[str, str]) -> int:
        """Servers now ACTIVE on a host that is not a source."""
        sources = set(placed.values())
        count = 0
        for server_id in placed:
            server = self.conn.compute.get_server(server_id)
            count += int(server.status == "ACTIVE"
                         and server.compute_host not in sources)
        return count

    def run(self, contender: str, sources: list[str],
            per_host: int) -> dict[str, Any]:
        """Run ``contender`` once from a fresh state; its figures."""
        placed = self.reset(sources, per_host,
                            disable=contender in (QUEUE, LOOP))
        action: Callable[[dict[str, str]], dict[str, Any]] = {
            QUEUE: self._queue,
            NMF: lambda p: self.nmf(p, record=False),
            NMF_SQLITE: lambda p: self.nmf(p, record=True),
            NMF_NOTIFIED: lambda p: self.nmf(p, record=False, overrides={
                "watch": {"source": "notifications",
                          "transport_url": self.notifications}}),
            LOOP: self._loop,
        }[contender]
        return self.measure(placed, action)

    def measure(self, placed: dict[str, str],
                action: Callable[[dict[str, str]], dict[str, Any]]
                ) -> dict[str, Any]:
        """Run ``action`` on the servers ``placed``; its figures, with the
        compute requests the sandbox counted and what Nova did."""
        log_offset = os.path.getsize(self.sandbox.log_file)
        self.client.reset_stats()
        figures = action(placed)
        stats = self.client.request_stats()["services"]
        figures["landed"] = self.landed(placed)
        compute = stats.get("compute", {})
        figures["requests"] = compute.get("total", 0)
        figures["requests_by_route"] = compute.get("requests", {})
        figures["placement_requests"] = stats.get("placement", {}).get(
            "total", 0)
        figures["requests_per_server"] = figures["requests"] / len(placed)
        figures["requests_per_s_per_host"] = figures["requests"] / (
            figures["wall_s"] * len(set(placed.values())))
        figures.update(self._nova_timeline(placed, log_offset, figures))
        return figures

    # -- the contenders --------------------------------------------------

    def nmf(self, placed: dict[str, str], record: bool,
            overrides: dict[str, dict[str, Any]] | None = None
            ) -> dict[str, Any]:
        """``host-evacuate-live`` of the hosts of ``placed`` by the
        runner, with the options ``overrides`` sets (by group)."""
        conf = make_conf(overrides)
        sources = sorted(set(placed.values()))
        started: list[float] = []

        def on_event(event: str, data: dict[str, Any]) -> None:
            if event == "server.started":
                started.append(time.monotonic())

        with tempfile.TemporaryDirectory(prefix="nmf-bench-b1-") as tmp, \
                _captured_polls() as polls, _pool_full() as discarded:
            conf.set_override("state_dir", tmp)
            backend = persistence.backend_from_conf(conf) if record else None
            runner = runner_mod.Runner(conf, nova.NovaCompute(self.conn),
                                       backend=backend,
                                       subscribers=[on_event])
            request = request_mod.build_request(
                conf, request_mod.Operation.HOST_EVACUATE_LIVE,
                hosts=sources)
            t0 = time.monotonic()
            result = runner.run(request)
            t1 = time.monotonic()
            if backend is not None:
                backend.close()
        return {
            "t0": t0, "wall_s": t1 - t0,
            "verified": result.count("migrated"),
            "failed": result.count("failed"),
            "first_post_s": min(started) - t0 if started else None,
            "polls": [(t - t0, text) for t, text in polls],
            "pool_full": len(discarded),
        }

    def _queue(self, placed: dict[str, str]) -> dict[str, Any]:
        compute = self.conn.compute
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
            seconds=5)
        t0 = time.monotonic()
        first_post = None
        for server_id in placed:
            compute.live_migrate_server(server_id, host=None,
                                        block_migration="auto")
            first_post = first_post or time.monotonic() - t0
        done: set[str] = set()
        while time.monotonic() - t0 < DEADLINE:
            time.sleep(QUEUE_POLL)
            for migration in compute.migrations(
                    migration_type="live-migration",
                    changes_since=since.isoformat()):
                if (migration.server_id in placed and migration.status in
                        ("completed", "error", "failed", "cancelled")):
                    done.add(migration.server_id)
            if len(done) == len(placed):
                break
        return {"t0": t0, "wall_s": time.monotonic() - t0, "verified": 0,
                "first_post_s": first_post}

    def _loop(self, placed: dict[str, str]) -> dict[str, Any]:
        compute = self.conn.compute
        t0 = time.monotonic()
        first_post = None
        refused: list[str] = []
        for server_id in placed:
            server = compute.get_server(server_id)
            offset = os.path.getsize(self.sandbox.log_file)
            try:
                compute.live_migrate_server(server, host=None,
                                            block_migration="auto")
            except openstack.exceptions.BadRequestException as exc:
                # ``openstack server migrate --live-migration --wait``
                # exits 1 on this and the shell loop goes on: so do we,
                # saying which server, Nova's answer and why.
                if "no valid host" not in str(exc).lower():
                    raise
                refused.append(self._refusal(server_id, exc, offset))
                continue
            first_post = first_post or time.monotonic() - t0
            while time.monotonic() - t0 < DEADLINE:
                status = compute.get_server(server_id).status.lower()
                if status in ("active", "error"):
                    break
                time.sleep(LOOP_POLL)
        return {"t0": t0, "wall_s": time.monotonic() - t0, "verified": 0,
                "first_post_s": first_post, "refused": refused}

    def _refusal(self, server_id: str, exc: Exception, offset: int) -> str:
        """Nova refused to live-migrate ``server_id``: its answer, the
        state of the compute services then, and the lines the scheduler
        and conductor logged about it from ``offset`` on."""
        services = ", ".join(
            f"{s.host} {s.status}/{s.state}"
            for s in self.conn.compute.services(binary="nova-compute"))
        with open(self.sandbox.log_file, encoding="utf-8",
                  errors="replace") as log:
            log.seek(offset)
            said = [line.strip()[:300] for line in log
                    if _NO_HOST_LINE.search(line)]
        return (f"server {server_id}: {getattr(exc, 'details', exc)}; "
                f"services: {services}; Nova logged: "
                + (" | ".join(said[:6]) or "nothing at INFO"))

    # -- what Nova did -----------------------------------------------------

    def _nova_timeline(self, placed: dict[str, str], offset: int,
                       figures: dict[str, Any]) -> dict[str, Any]:
        """When Nova ran each migration, from the sandbox's log: the wait
        before the first ran, Nova idle between two migrations of a host
        (mean per host), and the tail after the last one ended."""
        # The log's local time to this process's monotonic clock.
        shift = time.time() - time.monotonic()
        runs: dict[str, list[list[float]]] = {}
        with open(self.sandbox.log_file, encoding="utf-8",
                  errors="replace") as log:
            log.seek(offset)
            for line in log:
                match = common.NOVA_LIVE_LINE.match(line)
                if match is None or match.group(2) not in placed:
                    continue
                when = common.log_epoch(match.group(1)) - shift - \
                    figures["t0"]
                host = placed[match.group(2)]
                if match.group(3).startswith("Live"):
                    runs.setdefault(host, []).append([when, when])
                elif runs.get(host):
                    runs[host][-1][1] = when
        if not runs:
            return {}
        idle = [
            sum(max(0.0, b[0] - a[1]) for a, b in zip(r, r[1:],
                                                      strict=False))
            for r in runs.values()
        ]
        return {
            "nova_first_run_s": min(r[0][0] for r in runs.values()),
            "nova_idle_s": sum(idle) / len(idle),
            "nova_last_end_s": max(r[-1][1] for r in runs.values()),
            "tail_s": figures["wall_s"] - max(r[-1][1]
                                              for r in runs.values()),
        }


def make_conf(overrides: dict[str, dict[str, Any]] | None = None
              ) -> cfg.ConfigOpts:
    """The tool's options at their defaults, but for ``overrides``."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project="nova-migrate-flows-benchmarks",
         default_config_files=[], default_config_dirs=[])
    for group, values in (overrides or {}).items():
        for name, value in values.items():
            conf.set_override(name, value, group=group)
    return conf


@contextlib.contextmanager
def _captured_polls() -> Iterator[list[tuple[float, str]]]:
    """The poller's "Polled the migrations of HOST: ..." debug lines,
    with when they were logged."""
    polls: list[tuple[float, str]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Polled"):
                polls.append((time.monotonic(), record.getMessage()))

    logger = logging.getLogger("nova_migrate_flows.execution.poller")
    handler = Capture(logging.DEBUG)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield polls
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _pool_full() -> Iterator[list[str]]:
    """urllib3's "Connection pool is full, discarding connection" warnings
    (more threads sending requests than pooled connections)."""
    discarded: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "pool is full" in record.getMessage():
                discarded.append(record.getMessage())

    logger = logging.getLogger("urllib3.connectionpool")
    handler = Capture(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield discarded
    finally:
        logger.removeHandler(handler)


# -- in the benchmark process ------------------------------------------


def run(quick: bool, sandbox: control.SandboxInfo, repeat: int = 1,
        notifications: str | None = None) -> common.Section:
    """Every contender, every scenario, in one sandbox (the contender
    that watches through Nova's notifications when the sandbox sends them
    to ``notifications``)."""
    section = common.Section(
        "b1", f"B1: drain speed and API economy (sandbox, live migrations "
        f"of {DURATION:.0f} s, 1 per source host at a time)",
        ["scenario", "contender", "wall_s", "x_queue", "req_per_server",
         "req_per_s_per_host", "placement_req", "verified", "landed",
         "first_post_s", "nova_first_run_s", "nova_idle_s", "tail_s"],
    )
    bench = Bench(sandbox, notifications)
    contenders = CONTENDERS + ((NMF_NOTIFIED,) if notifications else ())
    hosts = control.info(sandbox.state_dir).hosts
    details: dict[str, Any] = {}
    for count, per_host in (QUICK if quick else FULL):
        scenario = f"{count}x{per_host}x{DURATION:.0f}s"
        sources = hosts[:count]
        measured: dict[str, dict[str, Any]] = {}
        for contender in contenders:
            runs = [bench.run(contender, sources, per_host)
                    for _ in range(repeat)]
            runs.sort(key=lambda r: r["wall_s"])
            measured[contender] = runs[len(runs) // 2]
        floor = measured[QUEUE]["wall_s"]
        for contender, figures in measured.items():
            section.rows.append({
                "scenario": scenario,
                "contender": contender,
                "wall_s": figures["wall_s"],
                "x_queue": common.ratio(figures["wall_s"], floor),
                "req_per_server": figures["requests_per_server"],
                "req_per_s_per_host": figures["requests_per_s_per_host"],
                "placement_req": figures["placement_requests"],
                "verified": figures["verified"],
                "landed": f"{figures['landed']}/{count * per_host}",
                "first_post_s": figures["first_post_s"],
                "nova_first_run_s": figures.get("nova_first_run_s"),
                "nova_idle_s": figures.get("nova_idle_s"),
                "tail_s": figures.get("tail_s"),
            })
            details[f"{scenario} {contender}"] = {
                "requests_by_route": figures["requests_by_route"],
                "polls": figures.get("polls", []),
            }
        for contender, figures in measured.items():
            for refusal in figures.get("refused", []):
                section.notes.append(
                    f"{scenario} {contender}: Nova refused to live-migrate "
                    f"{refusal}")
        _goals(section, scenario, count * per_host, measured)
        for contender in (NMF, NMF_NOTIFIED):
            if contender not in measured:
                continue
            figures = measured[contender]
            section.notes.append(
                f"{scenario} {contender}: where the requests go, per "
                "server: " + where_per_server(figures["requests_by_route"],
                                              count * per_host))
            section.notes.append(
                f"{scenario} {contender}: {REGION_HOSTS} source hosts "
                "drained at once, each as here, would put "
                f"{figures['requests_per_s_per_host'] * REGION_HOSTS:.0f} "
                "compute API requests per second on nova-api (this "
                "scenario's rate per source host, times "
                f"{REGION_HOSTS}).")
    section.notes += [
        "x_queue: wall time / Nova's own queue's in the same scenario; "
        "req_per_server: compute API requests counted by the sandbox "
        "(identity and placement excluded) / servers; "
        "req_per_s_per_host: those requests / wall_s / source hosts.",
        "first_post_s: from the start until Nova answered the first "
        "live-migrate request; nova_first_run_s: from the start until "
        "Nova ran the first migration; nova_idle_s: mean per source "
        "host of the time Nova ran none of its migrations between its "
        "first and its last; "
        "tail_s: after the last migration ended.",
        f"one-by-one polls every {LOOP_POLL:.0f} s (openstackclient 10.5 "
        "itself sleeps 5 s: osc_lib.utils.wait_for_status), so the real "
        "loop is slower still.",
        f"Runs per contender: {repeat} (the median is shown).",
    ]
    section.details = details
    return section


def where_per_server(routes: dict[str, int], servers: int) -> str:
    """Compute requests by route, per server, the most first."""
    return ", ".join(
        f"{route} {count / servers:.2f}" for route, count in sorted(
            routes.items(), key=lambda item: (-item[1], item[0])))


def _goals(section: common.Section, scenario: str, servers: int,
           measured: dict[str, dict[str, Any]]) -> None:
    floor = measured[QUEUE]["wall_s"]
    for contender in (NMF, NMF_SQLITE, NMF_NOTIFIED):
        if contender not in measured:
            continue
        figures = measured[contender]
        most = (GOAL_NOTIFIED_REQUESTS if contender == NMF_NOTIFIED
                else GOAL_REQUESTS)
        ratio = figures["wall_s"] / floor
        per_server = figures["requests_per_server"]
        name = f"{scenario} {contender}"
        section.goals += [
            common.Goal(
                f"{name}: within 5 % of Nova's own queue",
                ratio <= GOAL_RATIO,
                f"{figures['wall_s']:.1f} s = {ratio:.2f}x the queue's "
                f"{floor:.1f} s"),
            common.Goal(
                f"{name}: every server verified",
                figures["verified"] == servers,
                f"{figures['verified']}/{servers}"),
            common.Goal(
                f"{name}: <= {most:g} compute API requests per server",
                per_server <= most,
                f"{per_server:.2f} ({figures['requests']} requests: "
                + ", ".join(f"{route} {count}" for route, count in sorted(
                    figures["requests_by_route"].items())) + ")"),
        ]
