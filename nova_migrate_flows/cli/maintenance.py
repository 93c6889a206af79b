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
"""``host-maintenance``: enter, exit, status and roll."""

from typing import Any

from oslo_config import cfg

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.cli import moves, output
from nova_migrate_flows.request import Operation


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "host-maintenance",
        help="Host maintenance from start to finish: 'enter' empties hosts "
        "and leaves them marked, 'exit' brings them back (servers too with "
        "--move-back), 'status' shows them, 'roll' does it batch after "
        "batch with a hook in between.",
    )
    actions = parser.add_subparsers(dest="maintenance_action",
                                    metavar="ACTION")
    actions.required = True
    add_operation_parsers(actions, moves.run_here)

    status = actions.add_parser(
        "status",
        help="Which hosts are in maintenance, since when, by which run, "
        "what moved and where, and whether the service is up.")
    status.add_argument("hosts", metavar="HOST", nargs="*",
                        help="Hosts to show (default: every host in "
                        "maintenance).")
    output.add_format_argument(status)
    status.set_defaults(func=show_status)

    add_roll_parser(actions, run_roll)


def add_roll_parser(actions: Any, handler: moves.Handler) -> None:
    """``roll``, handing its request to ``handler``."""
    roll = actions.add_parser(
        "roll",
        help="For each batch of hosts in order: enter, run the hook once "
        "per host, wait for its compute service to be up, exit; one "
        "recorded run ('resume' continues it).")
    roll.add_argument("hosts", metavar="HOST", nargs="+",
                      help="Hosts, in the order they go.")
    roll.add_argument("--batch", type=int, required=True, metavar="N",
                      help="Hosts in maintenance at once.")
    roll.add_argument("--hook", metavar="CMD",
                      help="Command the 'run-command' hook task runs for "
                      "each host while it is empty (shell; environment: "
                      "NMF_HOST, NMF_RUN_ID); it must be idempotent.")
    _add_move_back(roll)
    roll.add_argument("--wait-up", type=float, metavar="SECONDS",
                      help="How long to wait for a host's compute service "
                      "to be up after its hook (default: [maintenance] "
                      "wait_up).")
    _add_reason(roll)
    _add_max_concurrent(roll)
    output.add_format_argument(roll)
    roll.set_defaults(func=lambda conf, args: handler(
        conf, args, roll_request(conf, args)))


def add_operation_parsers(actions: Any, handler: moves.Handler) -> None:
    """``enter`` and ``exit``, each handing its request to ``handler``."""
    enter = actions.add_parser(
        "enter",
        help="Move every server off each host (live for ACTIVE and PAUSED, "
        "cold for SHUTOFF), each verified, and leave the host disabled "
        "with a maintenance marker. Refused before any change when the "
        "other hosts cannot take the servers.")
    enter.add_argument("hosts", metavar="HOST", nargs="+",
                       help="Hosts to put in maintenance.")
    _add_reason(enter)
    _add_max_concurrent(enter)
    moves.add_dry_run(enter)
    output.add_format_argument(enter)
    enter.set_defaults(func=lambda conf, args: handler(
        conf, args, enter_request(conf, args)))

    leave = actions.add_parser(
        "exit",
        help="Bring hosts back: enable the compute service that an 'enter' "
        "run disabled, and with --move-back return the servers it moved "
        "away (those still where it put them, unchanged).")
    leave.add_argument("hosts", metavar="HOST", nargs="+",
                       help="Hosts to bring back.")
    _add_move_back(leave)
    moves.add_dry_run(leave)
    output.add_format_argument(leave)
    leave.set_defaults(func=lambda conf, args: handler(
        conf, args, exit_request(conf, args)))


def _add_reason(parser: Any) -> None:
    parser.add_argument("--reason", metavar="TEXT",
                        help="Why (kept in the service's disabled reason).")


def _add_max_concurrent(parser: Any) -> None:
    parser.add_argument(
        "--max-concurrent", type=int, metavar="N",
        help="Live migrations at once per source host (default: [drain] "
        "max_concurrent_live_migrations).")


def _add_move_back(parser: Any) -> None:
    parser.add_argument(
        "--move-back", action="store_true",
        help="Return the servers the enter run moved away, live or cold as "
        "they left, each verified.")


def enter_request(conf: cfg.ConfigOpts,
                  args: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, Operation.MAINTENANCE_ENTER, hosts=args.hosts,
        reason=args.reason, max_concurrent=args.max_concurrent,
        dry_run=args.dry_run)


def exit_request(conf: cfg.ConfigOpts,
                 args: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, Operation.MAINTENANCE_EXIT, hosts=args.hosts,
        move_back=args.move_back, dry_run=args.dry_run)


def roll_request(conf: cfg.ConfigOpts,
                 args: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, Operation.MAINTENANCE_ROLL, hosts=args.hosts,
        batch=args.batch, hook=args.hook, move_back=args.move_back,
        wait_up=args.wait_up, reason=args.reason,
        max_concurrent=args.max_concurrent)


def run_roll(conf: cfg.ConfigOpts, args: Any,
             request: request_mod.MoveRequest) -> int:
    return roll_here(conf, args.format, request, None)


def roll_here(conf: cfg.ConfigOpts, fmt: str,
              request: request_mod.MoveRequest | None,
              run_id: str | None) -> int:
    """Run a roll in this process (``request``), or resume one
    (``run_id``)."""
    from nova_migrate_flows.compute import connection
    from nova_migrate_flows.engine import persistence
    from nova_migrate_flows.engine import roll as roll_mod

    backend = persistence.backend_from_conf(conf)
    compute = connection.compute_from_conf(conf)
    return moves.run_watched(
        conf, fmt,
        lambda live, subscribers: roll_mod.Roll(
            conf, compute, backend=backend, live_progress=live,
            subscribers=subscribers),
        lambda roll: roll.run(request) if request is not None
        else roll.resume(str(run_id)),
    )


def show_status(conf: cfg.ConfigOpts, args: Any) -> int:
    from nova_migrate_flows.compute import connection
    from nova_migrate_flows.engine import maintenance, persistence
    from nova_migrate_flows.engine import records as records_mod

    compute = connection.compute_from_conf(conf)
    backend = persistence.backend_from_conf(conf)
    try:
        rows = maintenance.status(compute.list_services(),
                                  records_mod.Records(backend), args.hosts)
    finally:
        backend.close()
        compute.close()
    if args.format == "json":
        output.print_json({"hosts": rows})
        return 0
    output.table(
        ("Host", "Maintenance", "Since", "Run", "Reason", "Service", "Up",
         "Moved", "Where"),
        [(r["host"], "yes" if r["maintenance"] else "no", r["since"],
          r["run_id"], r["reason"] if r["maintenance"]
          else r["disabled_reason"], r["service"],
          "yes" if r["up"] else "NO", r["moved"],
          [f"{host}: {count}" for host, count in r["destinations"].items()])
         for r in rows])
    return 0
