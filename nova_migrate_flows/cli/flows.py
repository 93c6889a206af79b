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
"""``flows list``, ``flows show`` and ``resume``: the recorded runs."""

from typing import Any

from oslo_config import cfg

from nova_migrate_flows.cli import maintenance, moves, output
from nova_migrate_flows.request import Operation


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "flows", help="The recorded runs: 'flows list', 'flows show ID'."
    )
    actions = parser.add_subparsers(dest="flows_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="List the recorded runs.")
    output.add_format_argument(listing)
    listing.set_defaults(func=flows_list)
    show = actions.add_parser("show", help="Show a run, server by server.")
    show.add_argument("run_id", metavar="ID", help="The run's id.")
    output.add_format_argument(show)
    show.set_defaults(func=flows_show)

    parser = subparsers.add_parser(
        "resume",
        help="Finish a run whose process was killed: servers already "
        "verified are not touched, migrations in flight are adopted.",
    )
    parser.add_argument("run_id", metavar="ID", help="The run's id.")
    output.add_format_argument(parser)
    parser.set_defaults(func=resume)


def flows_list(conf: cfg.ConfigOpts, args: Any) -> int:
    from nova_migrate_flows.engine import persistence, records

    books = records.Records(persistence.backend_from_conf(conf)).list()
    runs = [
        {
            "run_id": book.uuid,
            "operation": (book.meta.get("request") or {}).get("operation"),
            "target": " ".join(
                (book.meta.get("request") or {}).get("hosts")
                or (book.meta.get("request") or {}).get("servers") or ()),
            "state": book.meta.get("state"),
            "started_at": book.meta.get("started_at"),
            "summary": book.meta.get("summary"),
        }
        for book in books
    ]
    if args.format == "json":
        output.print_json({"runs": runs})
        return 0
    output.table(
        ("Run ID", "Operation", "Target", "State", "Started", "Migrated",
         "Failed", "Skipped"),
        [
            (r["run_id"], r["operation"], r["target"], r["state"],
             r["started_at"], *[(r["summary"] or {}).get(k) for k in
                                ("migrated", "failed", "skipped")])
            for r in runs
        ],
    )
    return 0


def flows_show(conf: cfg.ConfigOpts, args: Any) -> int:
    from nova_migrate_flows.cli import report
    from nova_migrate_flows.engine import persistence, records

    store = records.Records(persistence.backend_from_conf(conf))
    view = records.describe(store.get(args.run_id))
    if args.format == "json":
        output.print_json(view)
        return 0
    print(f"Run {view['run_id']}: {view['name']} — {view['state']} "
          f"(started {view['started_at']})")
    cloud = view.get("cloud") or {}
    if cloud:
        print(f"Cloud: {cloud.get('cloud') or '-'}, compute endpoint "
              f"{cloud.get('compute_endpoint') or '-'}")
    output.table(("Flow", "State"),
                 [(f["name"], f["state"]) for f in view["flows"]])
    if view["steps"]:
        output.table(("Step", "Run"), sorted(view["steps"].items()))
        print("Each step is a run of its own: 'flows show RUN'.")
        return 0
    output.table(
        report.SUMMARY_HEADERS[:5] + ("Reason",),
        [(s["server"], s["name"], s["source"], s["destination"],
          s["status"], s["reason"]) for s in view["servers"]],
    )
    return 0


def resume(conf: cfg.ConfigOpts, args: Any) -> int:
    from nova_migrate_flows.compute import connection
    from nova_migrate_flows.engine import persistence, records
    from nova_migrate_flows.engine import runner as runner_mod

    backend = persistence.backend_from_conf(conf)
    book = records.Records(backend).get(args.run_id)
    if (book.meta.get("request") or {}).get("operation") == \
            Operation.MAINTENANCE_ROLL:
        backend.close()
        return maintenance.roll_here(conf, args.format, None, args.run_id)
    compute = connection.compute_from_conf(conf)
    return moves.run_watched(
        conf, args.format,
        lambda live, subscribers: runner_mod.Runner(
            conf, compute, backend=backend, live_progress=live,
            subscribers=subscribers),
        lambda runner: runner.resume(args.run_id),
    )
