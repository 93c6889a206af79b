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
"""The commands that move servers: live-migrate, resize, move (any kind of
move), and the host operations host-evacuate-live, host-servers-migrate and
host-evacuate."""

import argparse
import logging as std_logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_config import cfg

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.cli import output, signals
from nova_migrate_flows.cli import progress as progress_mod
from nova_migrate_flows.request import Operation

#: What runs a parsed operation: the direct commands run it here, ``submit``
#: posts it to the jobboard.
Handler = Callable[[cfg.ConfigOpts, Any, request_mod.MoveRequest], int]


def add_parsers(subparsers: Any) -> None:
    add_operation_parsers(subparsers, run_here)


def add_operation_parsers(subparsers: Any, handler: Handler) -> None:
    """One parser per operation, each handing its request to ``handler``."""
    parser = subparsers.add_parser(
        "live-migrate",
        help="Live-migrate one server, checked before and verified after.",
    )
    _add_server_and_target(parser)
    _add_block_migrate(parser)
    parser.add_argument(
        "--force", action="store_true",
        help="Bypass the scheduler's checks of HOST (microversion 2.67 and "
        "earlier only; unsafe: the scheduler's filters do not run).",
    )
    add_dry_run(parser)
    output.add_format_argument(parser)
    _handled_by(parser, handler, live_migrate)

    parser = subparsers.add_parser(
        "host-evacuate-live",
        help="Live-migrate every server off each host, throttled like "
        "Nova, each verified.",
    )
    _add_hosts(parser)
    _add_block_migrate(parser)
    parser.add_argument(
        "--max-concurrent", type=int, metavar="N",
        help="Live migrations at once per source host (default: [drain] "
        "max_concurrent_live_migrations, 1 like Nova).",
    )
    _add_host_options(parser)
    _handled_by(parser, handler, host_evacuate_live)

    parser = subparsers.add_parser(
        "host-servers-migrate",
        help="Cold-migrate every server off each host, confirm each once "
        "verified, and keep each one's power state.",
    )
    _add_hosts(parser)
    _add_no_confirm(parser)
    _add_host_options(parser)
    _handled_by(parser, handler, host_servers_migrate)

    parser = subparsers.add_parser(
        "resize",
        help="Resize a server to another flavor, verify it and confirm it "
        "(or revert it).",
    )
    parser.add_argument("server", metavar="SERVER",
                        help="Name or id of the server.")
    parser.add_argument("flavor", metavar="FLAVOR",
                        help="Name or id of the new flavor.")
    _add_no_confirm(parser)
    add_dry_run(parser)
    output.add_format_argument(parser)
    _handled_by(parser, handler, resize)

    parser = subparsers.add_parser(
        "move",
        help="Move one server with a kind of move chosen by name (one of "
        "this project's, or one a plugin adds), checked before and verified "
        "after.",
    )
    parser.add_argument(
        "--kind", required=True, metavar="KIND",
        help="The kind of move: live-migrate, cold-migrate, evacuate, or "
        "one a plugin adds ('list-tasks' lists the installed kinds).",
    )
    _add_server_and_target(parser)
    _add_no_confirm(parser)
    add_dry_run(parser)
    output.add_format_argument(parser)
    _handled_by(parser, handler, move)

    parser = subparsers.add_parser(
        "host-evacuate",
        help="Rebuild every server of a failed host elsewhere, restart the "
        "ones that ran, and verify them.",
    )
    parser.add_argument("hosts", metavar="HOST", nargs=1,
                        help="The failed host.")
    parser.add_argument(
        "--force-down", action="store_true",
        help="Force the host's compute service down first (only when the "
        "host is really dead: its servers would run twice otherwise).",
    )
    _add_host_options(parser)
    _handled_by(parser, handler, host_evacuate)


def _handled_by(
    parser: argparse.ArgumentParser,
    handler: Handler,
    build: Callable[[cfg.ConfigOpts, Any], request_mod.MoveRequest],
) -> None:
    parser.set_defaults(
        func=lambda conf, args: handler(conf, args, build(conf, args))
    )


def _add_server_and_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server", metavar="SERVER",
                        help="Name or id of the server.")
    parser.add_argument("target", metavar="HOST", nargs="?",
                        help="Target host (default: Nova's scheduler "
                        "chooses).")


def _add_hosts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hosts", metavar="HOST", nargs="+",
                        help="Source host(s) to empty.")


def _add_block_migrate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--block-migrate", action="store_true",
        help="Copy the disks too (local storage). Default: [migration] "
        "block_migration (auto: Nova decides).",
    )


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="Print the plan and every preflight result; "
                        "change nothing.")


def _add_no_confirm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-confirm", action="store_true",
        help="Leave the servers in VERIFY_RESIZE instead of confirming.",
    )


def _add_host_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target-host", metavar="HOST",
                        help="Move every server to this host (default: "
                        "Nova's scheduler, or [drain] candidate_hosts).")
    add_dry_run(parser)
    parser.add_argument("--enable-after", action="store_true", default=None,
                        help="Enable the compute service again once its "
                        "host is empty.")
    parser.add_argument("--stop-on-failure", action="store_true",
                        default=None,
                        help="Start no other migration after a server "
                        "failed.")
    output.add_format_argument(parser)


def live_migrate(conf: cfg.ConfigOpts, args: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, Operation.LIVE_MIGRATE,
        servers=[args.server],
        target_host=args.target,
        block_migration="true" if args.block_migrate else None,
        force=args.force,
        dry_run=args.dry_run,
    )


def resize(conf: cfg.ConfigOpts, args: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, Operation.RESIZE,
        servers=[args.server],
        flavor=args.flavor,
        confirm=not args.no_confirm,
        dry_run=args.dry_run,
    )


def move(conf: cfg.ConfigOpts, args: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, Operation.MOVE,
        servers=[args.server],
        target_host=args.target,
        kind=args.kind,
        confirm=not args.no_confirm,
        dry_run=args.dry_run,
    )


def _host_request(conf: cfg.ConfigOpts, args: Any, operation: Operation,
                  **extra: Any) -> request_mod.MoveRequest:
    return request_mod.build_request(
        conf, operation,
        hosts=args.hosts,
        target_host=args.target_host,
        dry_run=args.dry_run,
        enable_after=args.enable_after,
        stop_on_failure=args.stop_on_failure,
        **extra,
    )


def host_evacuate_live(
    conf: cfg.ConfigOpts, args: Any
) -> request_mod.MoveRequest:
    return _host_request(
        conf, args, Operation.HOST_EVACUATE_LIVE,
        block_migration="true" if args.block_migrate else None,
        max_concurrent=args.max_concurrent,
    )


def host_servers_migrate(
    conf: cfg.ConfigOpts, args: Any
) -> request_mod.MoveRequest:
    return _host_request(
        conf, args, Operation.HOST_SERVERS_MIGRATE,
        confirm=not args.no_confirm,
    )


def host_evacuate(conf: cfg.ConfigOpts, args: Any) -> request_mod.MoveRequest:
    return _host_request(
        conf, args, Operation.HOST_EVACUATE, force_down=args.force_down,
    )


def run_here(conf: cfg.ConfigOpts, args: Any,
             request: request_mod.MoveRequest) -> int:
    """Run the operation in this process, to its end."""
    from nova_migrate_flows.compute import connection

    compute = connection.compute_from_conf(conf)
    # Authenticate and read Nova's versions while the engine is imported
    # and the record opened.
    compute.prefetch()
    from nova_migrate_flows.engine import persistence
    from nova_migrate_flows.engine import runner as runner_mod

    backend = None if request.dry_run else persistence.backend_from_conf(
        conf)
    return run_watched(
        conf, args.format,
        lambda live, subscribers: runner_mod.Runner(
            conf, compute, backend=backend, live_progress=live,
            subscribers=subscribers),
        lambda runner: runner.run(request),
    )


Worker = TypeVar("Worker", bound=signals.Stoppable)


def run_watched(
    conf: cfg.ConfigOpts,
    fmt: str,
    make: Callable[[bool, list[Any]], Worker],
    go: Callable[[Worker], Any],
) -> int:
    """Build a runner with ``make(live_progress, subscribers)`` and run
    ``go(runner)`` under the progress display (on a terminal) and the
    handler of SIGINT/SIGTERM; print the result, answer its exit code."""
    from nova_migrate_flows.cli import report

    interactive = fmt == "table" and sys.stderr.isatty()
    display = progress_mod.Progress() if interactive else None
    if display is not None:
        quiet_console_logs(conf)
        display.start()
    worker = make(interactive, [display] if display else [])
    try:
        with signals.graceful_interrupts(worker, conf.drain.interrupt_action):
            result = go(worker)
    finally:
        if display is not None:
            display.close()
    report.print_result(result, fmt)
    return int(result.exit_code)


def quiet_console_logs(conf: cfg.ConfigOpts) -> None:
    """Keep INFO lines off the terminal while the progress display runs
    (a log file, when configured, still gets them)."""
    if conf.debug:
        return
    for handler in std_logging.getLogger().handlers:
        if isinstance(handler, std_logging.StreamHandler) and getattr(
                handler, "stream", None) in (sys.stderr, sys.stdout):
            handler.setLevel(std_logging.WARNING)
