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
"""Where the B2 runner's cost per server grows: cProfiles at two sizes.

``python benchmarks/b2_growth.py [SMALL LARGE]`` (default 1000 5000) runs
B2's ``runner`` (200 source hosts, the full run's shape) under a cProfile
of every thread (thread CPU time) at both sizes, each in a fresh
interpreter, and prints the functions whose cumulative CPU time per
server grew most, with their calls per server. Profiled runs are slow: at
5,000 servers about 11 minutes on the benchmarks' machine.
"""

import argparse
import os
import pstats
import sys
import tempfile
from typing import Any

import b2_scale
import common

from nova_migrate_flows import request as request_mod

#: Rows printed.
LINES = 30


def profile(servers: int, stats_file: str) -> dict[str, Any]:
    """In a worker: the runner at ``servers`` under cProfile, its
    statistics written to ``stats_file``; its CPU and outcome."""
    shape = b2_scale.FULL
    cloud, sources = b2_scale._cloud(servers, shape["hosts"],
                                     shape["targets"])
    conf = b2_scale._conf()
    request = request_mod.build_request(
        conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=sources)
    outcome, _, shares = b2_scale._profiled(
        lambda: b2_scale._run_runner(conf, cloud, request, None),
        dump_to=stats_file)
    return dict(outcome, profiled_cpu_s=sum(shares.values()))


def _name(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    for marker in ("site-packages/", "/lib/python3."):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            if marker != "site-packages/":
                filename = filename.split("/", 1)[-1]
    return f"{filename}:{line}({function})"


def compare(small: int, large: int, small_file: str,
            large_file: str) -> list[str]:
    """The functions whose cumulative time per server grew most."""
    before: dict[Any, Any] = pstats.Stats(small_file).stats  # type: ignore
    after: dict[Any, Any] = pstats.Stats(large_file).stats  # type: ignore
    rows = []
    for key, (_, calls, _, cumulative, _) in after.items():
        old = before.get(key, (0, 0, 0, 0.0, {}))
        rows.append((cumulative / large - old[3] / small, key,
                     old[3] / small, cumulative / large,
                     old[1] / small, calls / large))
    rows.sort(key=lambda row: -row[0])
    lines = [f"{'growth':>8}  {'ms/server':>19}  {'calls/server':>17}  "
             "function"]
    for grown, key, was, now, calls_was, calls_now in rows[:LINES]:
        lines.append(
            f"{1000 * grown:+8.2f}  {1000 * was:8.2f} -> {1000 * now:8.2f}"
            f"  {calls_was:7.1f} -> {calls_now:7.1f}  {_name(key)}")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small", type=int, nargs="?", default=1000)
    parser.add_argument("large", type=int, nargs="?", default=5000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nmf-bench-growth-") as tmp:
        files = {}
        for servers in (args.small, args.large):
            files[servers] = os.path.join(tmp, f"runner-{servers}.prof")
            done = common.in_subprocess(
                "b2_growth", "profile", b2_scale.TIMEOUT * 3,
                servers=servers, stats_file=files[servers])
            if "error" in done:
                print(f"{servers} servers: {done['error']}")
                return 1
            print(f"{servers} servers: {done['profiled_cpu_s']:.1f} s of "
                  f"CPU under the profiler, "
                  f"{1000 * done['profiled_cpu_s'] / servers:.1f} ms per "
                  f"server; {done['migrated']} migrated")
        print("\n".join(compare(args.small, args.large, files[args.small],
                                files[args.large])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
