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
"""Run the benchmarks of nova-migrate-flows; print one table; write JSON.

::

    python benchmarks/run.py [--quick] [--only b1,b4,b5,b3,p1,b2]
                             [--json FILE]

Every benchmark measures its baseline in the same run on the same machine
and reports ratios to it, so that figures from a busy machine still
compare. B1, B4, B5 and B3 need the sandbox cloud (Nova installed in this
interpreter: the ``sandbox`` extra); one sandbox is started for them and
stopped at the end. See ``doc/source/benchmarks.rst``.
"""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import b1_drain
import b2_scale
import b3_startup
import b4_single
import b5_trouble
import common
import p1_persistence

from nova_migrate_flows.sandbox import control

BENCHMARKS = ("b1", "b4", "b5", "b3", "p1", "b2")
DEFAULT_JSON = os.path.join(tempfile.gettempdir(), "nmf-benchmarks.json")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="Small sizes, one run each: a smoke test.")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help="Comma-separated benchmarks to run "
                        f"(default: {','.join(BENCHMARKS)}).")
    parser.add_argument("--json", default=DEFAULT_JSON, metavar="FILE",
                        help=f"Where to write the figures "
                        f"(default: {DEFAULT_JSON}).")
    parser.add_argument("--rst", metavar="FILE",
                        help="Also write the tables as reStructuredText.")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="B1: runs per contender; the median is shown.")
    parser.add_argument("--profile", action="store_true",
                        help="B2: add a cProfile of the runner and of "
                        "each contender that records the run (where its "
                        "persistence costs), and a tracemalloc of the "
                        "runner's memory. B4: add a wall-clock profile of "
                        "one more live-migrate.")
    parser.add_argument("--notifications", metavar="TRANSPORT_URL",
                        help="B1: have the sandbox's Nova send its "
                        "versioned notifications to this message bus "
                        "(e.g. rabbit://guest:guest@127.0.0.1:5672/) and "
                        "add the contender that watches through them.")
    parser.add_argument("--postgresql", metavar="URL",
                        help="B2: also record the run in this PostgreSQL "
                        "database (e.g. postgresql+psycopg2://nmf:PASSWORD@"
                        "127.0.0.1:5432/nmf); its tables are EMPTIED first.")
    parser.add_argument("--openstack", metavar="PATH",
                        help="B3: the openstack command to compare with "
                        f"(default: on PATH, or {b3_startup.OPENSTACK_VENV})")
    args = parser.parse_args(argv)
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}")
    if not 1 <= args.repeat <= 9:
        parser.error("--repeat: 1 to 9")
    return args


def _skipped(key: str, why: str) -> common.Section:
    section = common.Section(key, f"{key.upper()}: skipped", ["reason"])
    section.notes.append(why)
    return section


def run(args: argparse.Namespace) -> list[common.Section]:
    """Every selected benchmark, in order; the sandbox ones share one
    sandbox, stopped whatever happens."""
    sections = []
    sandbox_dir = None
    sandbox: control.SandboxInfo | None = None
    wants_sandbox = {"b1", "b4", "b5", "b3"} & set(args.only)
    try:
        if wants_sandbox and importlib.util.find_spec("nova") is not None:
            sandbox_dir = tempfile.mkdtemp(prefix="nmf-bench-sandbox-")
            sandbox = control.start(
                sandbox_dir, computes=max(b1_drain.computes(args.quick),
                                          b5_trouble.computes(args.quick)),
                live_migration_duration=b1_drain.DURATION,
                watch_pid=os.getpid(), notifications=args.notifications)
        for key in args.only:
            started = time.monotonic()
            if key in wants_sandbox and sandbox is None:
                section = _skipped(key, "Nova is not installed here: "
                                   "install the sandbox extra.")
            elif key == "b1":
                assert sandbox is not None
                section = b1_drain.run(args.quick, sandbox, args.repeat,
                                       args.notifications)
            elif key == "b4":
                assert sandbox is not None
                section = b4_single.run(args.quick, sandbox, args.profile)
            elif key == "b5":
                assert sandbox is not None
                section = b5_trouble.run(args.quick, sandbox)
            elif key == "b3":
                section = b3_startup.run(args.quick, sandbox,
                                         args.openstack)
            elif key == "p1":
                section = p1_persistence.run(args.quick)
            else:
                section = b2_scale.run(args.quick, args.profile,
                                       args.postgresql)
            section.seconds = time.monotonic() - started
            print(common.render(section) + "\n", flush=True)
            sections.append(section)
    finally:
        if sandbox_dir is not None:
            control.stop(sandbox_dir)
            shutil.rmtree(sandbox_dir, ignore_errors=True)
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    info = common.machine()
    print("Machine: {nproc} x {cpu}, {memory_gib} GiB, Python {python}, "
          "load {load_average}, commit {commit}\n".format(**info),
          flush=True)
    sections = run(args)
    document: dict[str, Any] = {
        "machine": info,
        "quick": args.quick,
        "seconds": round(time.monotonic() - started, 1),
        "benchmarks": {s.key: s.to_json() for s in sections},
    }
    with open(args.json, "w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=1)
    if args.rst:
        with open(args.rst, "w", encoding="utf-8") as stream:
            stream.write("\n".join(common.rst(s) for s in sections))
    print(f"Ran in {document['seconds']:.0f} s; figures in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
