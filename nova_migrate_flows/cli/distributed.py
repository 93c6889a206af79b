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
"""Distributed mode: ``submit`` posts jobs, ``conductor`` runs them,
``jobs list`` shows them."""

import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.cli import maintenance, moves, output
from nova_migrate_flows.request import Operation

LOG = logging.getLogger(__name__)


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="Check and plan an operation here, then post it to the "
        "jobboard (one job per source host) for conductors to run.",
    )
    operations = parser.add_subparsers(dest="operation", metavar="OPERATION")
    operations.required = True
    moves.add_operation_parsers(operations, submit)
    parser = operations.add_parser(
        "host-maintenance",
        help="Host maintenance: enter and exit post one job per host, a "
        "roll is posted as one job.")
    actions = parser.add_subparsers(dest="maintenance_action",
                                    metavar="ACTION")
    actions.required = True
    maintenance.add_operation_parsers(actions, submit)
    maintenance.add_roll_parser(actions, submit)

    parser = subparsers.add_parser(
        "conductor",
        help="Claim jobs from the jobboard and run them, until SIGTERM.",
    )
    parser.add_argument("--name", dest="conductor_name",
                        help="This conductor's name (default: [conductor] "
                        "name, or host name and pid).")
    parser.set_defaults(func=run_conductor)

    parser = subparsers.add_parser(
        "jobs", help="The jobs of the jobboard: 'jobs list'."
    )
    actions = parser.add_subparsers(dest="jobs_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser(
        "list", help="List posted, claimed (by whom) and finished jobs."
    )
    output.add_format_argument(listing)
    listing.set_defaults(func=jobs_list)


def submit(conf: cfg.ConfigOpts, args: Any,
           request: request_mod.MoveRequest) -> int:
    from nova_migrate_flows.cli import report
    from nova_migrate_flows.compute import connection
    from nova_migrate_flows.engine import jobboard, persistence
    from nova_migrate_flows.engine import roll as roll_mod
    from nova_migrate_flows.engine import runner as runner_mod

    backend = persistence.backend_from_conf(conf)
    compute = connection.compute_from_conf(conf)
    with jobboard.connected(conf, backend) as board:
        if request.op is Operation.MAINTENANCE_ROLL:
            result = roll_mod.Roll(conf, compute, backend=backend).submit(
                request, board)
        else:
            result = runner_mod.Runner(conf, compute,
                                       backend=backend).submit(request, board)
    if args.format == "json":
        output.print_json(result.to_json())
    elif result.dry_run:
        report.print_result(result, args.format)
    else:
        output.table(("Job", "Flow"),
                     [(j["job_id"], j["name"]) for j in result.jobs])
        print(f"Posted {len(result.jobs)} job(s) for run {result.run_id}; "
              "follow it with 'nova-migrate-flow flows show "
              f"{result.run_id}'.")
    return int(result.exit_code) if result.dry_run else 0


def run_conductor(conf: cfg.ConfigOpts, args: Any) -> int:
    from nova_migrate_flows.compute import connection
    from nova_migrate_flows.engine import conductor as conductor_mod
    from nova_migrate_flows.engine import jobboard, persistence

    name = (args.conductor_name or conf.conductor.name
            or f"{socket.gethostname()}-{os.getpid()}")
    backend = persistence.backend_from_conf(conf)
    compute = connection.compute_from_conf(conf)
    with jobboard.connected(conf, backend) as board:
        conductor = conductor_mod.Conductor(name, conf, compute, board,
                                            backend)
        stopped = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            LOG.warning("Conductor %s stopping (%s): running jobs are "
                        "suspended and left for another conductor", name,
                        signal.Signals(signum).name)
            stopped.set()
            conductor.stop()

        previous = {sig: signal.signal(sig, stop)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        LOG.info("Conductor %s waiting for jobs on the %s jobboard", name,
                 conf.jobboard.backend)
        try:
            thread = threading.Thread(target=conductor.run, daemon=True,
                                      name="conductor")
            thread.start()
            while thread.is_alive():
                thread.join(0.5)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            conductor.close()
    return 0


def jobs_list(conf: cfg.ConfigOpts, args: Any) -> int:
    from taskflow.jobs import base as jobs_base

    from nova_migrate_flows.engine import jobboard, persistence, records

    backend = persistence.backend_from_conf(conf)
    rows: list[dict[str, Any]] = []
    with jobboard.connected(conf, backend) as board:
        on_board = set()
        for job in board.iterjobs(ensure_fresh=True):
            on_board.add(job.uuid)
            owner = None
            if job.state == jobs_base.states.CLAIMED:
                owner = board.find_owner(job)
            rows.append({
                "job_id": job.uuid, "name": job.name,
                "state": "claimed" if owner else "posted",
                "owner": owner, "run_id": job.book_uuid,
                "created_at": job.created_on.isoformat()
                if job.created_on else None,
            })
    for book in records.Records(backend).list():
        for posted in book.meta.get("jobs") or ():
            if posted["job_id"] in on_board:
                continue
            detail = records.flow_detail(book, posted["name"])
            rows.append({
                "job_id": posted["job_id"], "name": posted["name"],
                "state": "finished", "owner": None, "run_id": book.uuid,
                "created_at": book.meta.get("started_at"),
                "flow_state": detail.state if detail is not None else None,
            })
    if args.format == "json":
        output.print_json({"jobs": rows})
        return 0
    output.table(
        ("Job", "Flow", "State", "Owner", "Run", "Created"),
        [(r["job_id"], r["name"],
          r["state"] + (f" ({r['flow_state']})" if r.get("flow_state")
                        else ""),
          r["owner"], r["run_id"], r["created_at"]) for r in rows],
    )
    return 0
