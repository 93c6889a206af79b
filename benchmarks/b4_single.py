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
"""B4: one server, as a user runs it (the sandbox's real Nova).

Each contender is a whole process, timed from its start to its exit, on a
fresh server of the first host (live migrations of 2 s; Nova's scheduler
picks the target), the two contenders taking turns:

* ``nova-migrate-flow live-migrate SERVER`` with the sandbox's
  configuration (the run recorded in SQLite, as the command line does):
  checked before, watched, verified after;
* ``sdk-script``: ``benchmarks/sdk_live_migrate.py``, openstacksdk's
  ``live_migrate_server`` then ``get_server`` every 0.25 s until the server
  is ACTIVE on another host: nothing checked, nothing verified.

The sandbox counts the compute API requests of each run and logs when
each began, which gives the time from the start of the process to its
first compute request.
"""

import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from typing import Any

import b1_drain
import b3_startup
import common

from nova_migrate_flows.sandbox import constants, control

GOAL_RATIO = 1.10
NMF = "nova-migrate-flow live-migrate"
SDK = "sdk-script"
#: Where a run's time goes (seconds from its start; the sandbox's log).
PHASES = ("first_request_s", "post_s", "nova_start_s", "nova_end_s")
SDK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "sdk_live_migrate.py")
PROFILED_CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "profiled_cli.py")


def _command(contender: str, sandbox: control.SandboxInfo,
             server_id: str) -> list[str]:
    if contender == NMF:
        return [b3_startup.NMF, "--config-file", sandbox.config_file,
                "live-migrate", server_id]
    return [sys.executable, SDK_SCRIPT, constants.CLOUD_ADMIN, server_id]


def _once(bench: b1_drain.Bench, contender: str, host: str
          ) -> dict[str, Any]:
    """One run of ``contender`` on a fresh server of ``host``."""
    server_id = next(iter(bench.reset([host], 1, disable=False)))
    bench.client.reset_stats()
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=bench.sandbox.clouds_yaml)
    moments = b3_startup.timeline(
        _command(contender, bench.sandbox, server_id), bench.sandbox, env,
        server_id)
    compute = bench.client.request_stats()["services"].get("compute", {})
    wall = moments.get("wall_s")
    end = moments.get("nova_end_s")
    return dict(
        {key: moments.get(key) for key in PHASES},
        ok=wall is not None and bench.landed({server_id: host}) == 1,
        wall_s=wall,
        after_nova_s=None if wall is None or end is None else wall - end,
        requests=compute.get("total", 0),
        requests_by_route=compute.get("requests", {}),
    )


def _profile(bench: b1_drain.Bench, host: str, lines: int = 30) -> str:
    """One more run of ``nova-migrate-flow live-migrate`` under a
    wall-clock profile of every thread (``profiled_cli.py``): where its
    time goes, imports apart."""
    server_id = next(iter(bench.reset([host], 1, disable=False)))
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=bench.sandbox.clouds_yaml)
    with tempfile.TemporaryDirectory(prefix="nmf-bench-b4-") as tmp:
        stats_file = os.path.join(tmp, "live-migrate.prof")
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, PROFILED_CLI, stats_file,
             *_command(NMF, bench.sandbox, server_id)[1:]],
            capture_output=True, env=env, timeout=b3_startup.TIMEOUT,
            check=False, stdin=subprocess.DEVNULL, text=True)
        wall = time.monotonic() - start
        if done.returncode != 0 or not os.path.exists(stats_file):
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"The profiled run failed (exit {done.returncode}): {tail}"
        stream = io.StringIO()
        stats = pstats.Stats(stats_file, stream=stream)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    imports = max((entry[3] for (filename, _, name), entry in raw.items()
                   if name == "_find_and_load"
                   and "importlib._bootstrap" in filename), default=0.0)
    stats.sort_stats("cumulative").print_stats("nova_migrate_flows", lines)
    return (
        f"Wall-clock profile of one more run of {NMF} (cProfile timed by "
        f"perf_counter on every thread, benchmarks/profiled_cli.py; "
        f"{wall:.2f} s under the profiler): imports took {imports:.2f} s "
        "in all; the functions of nova_migrate_flows by cumulative time "
        "(threads overlap, and a thread's waiting counts):\n"
        + "\n".join(line for line in stream.getvalue().splitlines()
                     if line.strip()))


def run(quick: bool, sandbox: control.SandboxInfo,
        profile: bool = False) -> common.Section:
    """Both contenders, taking turns, ``1`` (quick) or ``5`` times each;
    with ``profile``, one more profiled run of ours."""
    runs = 1 if quick else 5
    section = common.Section(
        "b4", "B4: one server, whole processes (sandbox, live migration of "
        f"{b1_drain.DURATION:.0f} s)",
        ["contender", "wall_s", "x_sdk", "wall_min_s", "wall_max_s",
         *PHASES, "after_nova_s", "requests", "landed"],
    )
    bench = b1_drain.Bench(sandbox)
    host = control.info(sandbox.state_dir).hosts[0]
    measured: dict[str, list[dict[str, Any]]] = {NMF: [], SDK: []}
    for turn in range(runs):
        order = (SDK, NMF) if turn % 2 else (NMF, SDK)
        for contender in order:
            measured[contender].append(_once(bench, contender, host))
    medians: dict[str, dict[str, Any]] = {}
    for contender, figures in measured.items():
        walls = [f["wall_s"] for f in figures if f["ok"]]
        medians[contender] = {
            "wall_s": common.median(walls) if walls else None,
            "wall_min_s": min(walls) if walls else None,
            "wall_max_s": max(walls) if walls else None,
            **{key: _median(figures, key)
               for key in (*PHASES, "after_nova_s")},
            "requests": common.median([f["requests"] for f in figures]),
            "landed": f"{sum(f['ok'] for f in figures)}/{len(figures)}",
        }
    floor = medians[SDK]["wall_s"]
    for contender, row in medians.items():
        section.rows.append(dict(
            row, contender=contender,
            x_sdk=common.ratio(row["wall_s"], floor)))
    ours = medians[NMF]["wall_s"]
    ratio = common.ratio(ours, floor)
    routes = measured[NMF][-1]["requests_by_route"]
    section.goals.append(common.Goal(
        "one server: live-migrate within 1.10x of the openstacksdk script",
        None if ratio is None else ratio <= GOAL_RATIO,
        "not measured" if ratio is None or ours is None or floor is None
        else f"{ours:.2f} s = {ratio:.2f}x the script's {floor:.2f} s"))
    section.notes += [
        f"Medians of {runs} run(s) per contender, taking turns; wall_s: "
        "from starting the process to its exit; x_sdk: / the script's.",
        "first_request_s: from the start to the start of the first "
        "compute request (the sandbox's log; token and endpoint discovery "
        "included); post_s: to the end of the live-migrate request; "
        "nova_start_s, nova_end_s: to Nova's compute logging the live "
        "migration started and finished; after_nova_s: from that end to "
        "the exit. So the phases say where the difference goes: before "
        "the request (start-up, reads, checks), Nova's own run, and after "
        "it (noticing the end, verifying, the summary).",
        "Where nova-migrate-flow's compute requests went (last run): "
        + ", ".join(f"{route} {count}"
                    for route, count in sorted(routes.items())),
        "Where the script's went (last run): " + ", ".join(
            f"{route} {count}" for route, count in sorted(
                measured[SDK][-1]["requests_by_route"].items())),
    ]
    if profile:
        section.notes.append(_profile(bench, host))
    section.details = {"runs": measured}
    return section


def _median(figures: list[dict[str, Any]], key: str) -> float | None:
    """The median of ``key`` over the runs that landed and measured it."""
    values = [f[key] for f in figures if f["ok"] and f.get(key) is not None]
    return common.median(values) if values else None
