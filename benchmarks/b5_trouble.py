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
"""B5: a drain under trouble (the sandbox's real Nova).

``host-evacuate-live`` of hosts of 8 servers (live migrations of 2 s, one
at a time per source host) where the first server of some hosts hangs: its
migration copies half the memory and then nothing more, until the
progress timeout (``[migration] progress_timeout``, 150 s by default)
aborts it; the servers queued behind it on that host wait until then. The
issue counted 17 compute requests per server for 4 hosts of 8 with 2 such
migrations, most of them ``GET /os-migrations`` polls of hosts where
nothing changed. Two contenders, each from the same fresh state:

* ``nova-migrate-flows``: the runner with the default options;
* ``no-backoff``: the same with ``[migration] poll_interval_max`` at
  ``poll_interval`` (a host polled every second however long nothing
  changes: the poller before it backed off).

The sandbox counts the compute requests and says where they went.
"""

import collections
import re
from typing import Any

import b1_drain
import common

from nova_migrate_flows.sandbox import constants, control

GOAL_REQUESTS = 6.0
#: (source hosts, servers per host, hosts with a hanging migration,
#: progress timeout in seconds).
FULL = (4, 8, 2, 150)
QUICK = (2, 3, 1, 20)
NMF = "nova-migrate-flows"
NO_BACKOFF = "no-backoff"
CONTENDERS = (NMF, NO_BACKOFF)
_POLLED = re.compile(r"Polled the migrations of (\S+):")


def computes(quick: bool) -> int:
    """Compute hosts the sandbox needs for B5."""
    return (QUICK if quick else FULL)[0] + b1_drain.TARGETS


def _drain(bench: b1_drain.Bench, contender: str, sources: list[str],
           per_host: int, hanging: int, progress_timeout: int
           ) -> dict[str, Any]:
    placed = bench.reset(sources, per_host, disable=False)
    # The first server of each of the first ``hanging`` hosts hangs.
    for host in sources[:hanging]:
        server_id = next(s for s, h in placed.items() if h == host)
        bench.conn.compute.set_server_metadata(server_id, **{
            constants.META_LIVE_MIGRATION_RESULT: constants.RESULT_HANG})
    migration: dict[str, Any] = {"progress_timeout": progress_timeout}
    if contender == NO_BACKOFF:
        migration["poll_interval_max"] = 1.0
    return bench.measure(placed, lambda p: bench.nmf(
        p, record=False, overrides={"migration": migration}))


def _polls_by_host(polls: list[tuple[float, str]]) -> dict[str, int]:
    """How many times the poller read each host's migrations."""
    hosts = (_POLLED.match(text) for _, text in polls)
    return dict(collections.Counter(m.group(1) for m in hosts if m))


def run(quick: bool, sandbox: control.SandboxInfo) -> common.Section:
    count, per_host, hanging, progress_timeout = QUICK if quick else FULL
    scenario = (f"{count}x{per_host}x{b1_drain.DURATION:.0f}s, {hanging} "
                f"hang {progress_timeout} s")
    section = common.Section(
        "b5", "B5: a drain under trouble (sandbox, migrations that hang "
        "until their progress timeout)",
        ["scenario", "contender", "wall_s", "req_per_server", "requests",
         "os_migrations", "polls", "migrated", "failed", "pool_full"],
    )
    bench = b1_drain.Bench(sandbox)
    sources = control.info(sandbox.state_dir).hosts[:count]
    servers = count * per_host
    details: dict[str, Any] = {}
    for contender in CONTENDERS:
        figures = _drain(bench, contender, sources, per_host, hanging,
                         progress_timeout)
        routes = figures["requests_by_route"]
        section.rows.append({
            "scenario": scenario,
            "contender": contender,
            "wall_s": figures["wall_s"],
            "req_per_server": figures["requests_per_server"],
            "requests": figures["requests"],
            "os_migrations": routes.get("GET /os-migrations", 0),
            "polls": len(figures["polls"]),
            "migrated": f"{figures['verified']}/{servers}",
            "failed": figures["failed"],
            "pool_full": figures["pool_full"],
        })
        by_host = _polls_by_host(figures["polls"])
        details[contender] = {"requests_by_route": routes,
                              "polls_by_host": by_host}
        section.notes.append(
            f"{contender}: where the {figures['requests']} compute requests "
            "went: " + ", ".join(f"{route} {n}" for route, n in sorted(
                routes.items(), key=lambda item: -item[1]))
            + "; polls by host (* a migration hung there): " + ", ".join(
                f"{host}{'*' if host in sources[:hanging] else ''} {n}"
                for host, n in sorted(by_host.items())))
        if contender == NMF:
            section.goals.append(common.Goal(
                f"{scenario}: <= {GOAL_REQUESTS:.0f} compute API requests "
                "per server",
                figures["requests_per_server"] <= GOAL_REQUESTS,
                f"{figures['requests_per_server']:.2f} "
                f"({figures['requests']} requests for {servers} servers)"))
    section.notes += [
        "req_per_server: compute API requests counted by the sandbox / "
        "servers of the drain (the hanging ones included); polls: the "
        "poller's GET /os-migrations; failed: the servers whose migration "
        "hung (aborted at the progress timeout, left on their host); "
        "pool_full: urllib3's 'Connection pool is full' warnings.",
        f"{NO_BACKOFF}: [migration] poll_interval_max = poll_interval (1 s): "
        "no backing off, as the poller did before.",
    ]
    section.details = details
    return section
