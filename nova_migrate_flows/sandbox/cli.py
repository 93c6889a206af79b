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
"""The ``sandbox`` command of the command line.

:func:`add_command_parser` adds it to the project's command line; every
leaf parser sets ``func`` to a handler ``handler(conf, args) -> int`` that
prints to stdout (only JSON with ``--format json``) and raises
:class:`~nova_migrate_flows.exceptions.InvalidInput` or
:class:`~nova_migrate_flows.exceptions.SandboxError` for errors.
``python -m nova_migrate_flows.sandbox`` runs the same sub-commands alone.
"""

import argparse
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nova_migrate_flows import exceptions
from nova_migrate_flows.sandbox import constants
from nova_migrate_flows.sandbox import control

Handler = Callable[[Any, argparse.Namespace], int]


def add_command_parser(subparsers: Any) -> None:
    """Add the ``sandbox`` command and its sub-commands to ``subparsers``.

    :param subparsers: what ``ArgumentParser.add_subparsers()`` returned
    """
    parser = subparsers.add_parser(
        "sandbox", help="Run a sandbox Nova cloud on 127.0.0.1.",
        description="Start, inspect and stop a sandbox cloud: a real Nova "
        "with fake hypervisors, for tests, demos and benchmarks.")
    add_subcommands(parser)


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's sub-commands (``start``, ``status``...)."""
    commands = parser.add_subparsers(dest="sandbox_command",
                                     metavar="COMMAND", required=True)

    start = _command(commands, "start", _start,
                     "Start a sandbox and wait until it is ready.")
    start.add_argument("--computes", type=int,
                       default=constants.DEFAULT_COMPUTES,
                       help="Number of compute hosts (default: %(default)s).")
    start.add_argument("--live-migration-duration", type=float,
                       default=constants.DEFAULT_LIVE_MIGRATION_DURATION,
                       metavar="SECONDS",
                       help="Default duration of a live migration "
                       "(default: %(default)s).")
    start.add_argument("--cold-migration-delay", type=float,
                       default=constants.DEFAULT_COLD_MIGRATION_DELAY,
                       metavar="SECONDS",
                       help="Default disk-copy time of a cold migration "
                       "(default: %(default)s).")
    start.add_argument("--token-ttl", type=float,
                       default=constants.DEFAULT_TOKEN_TTL, metavar="SECONDS",
                       help="Token lifetime (default: %(default)s).")
    _capacity_arguments(start, constants.DEFAULT_HOST_VCPUS,
                        constants.DEFAULT_HOST_RAM_MB,
                        constants.DEFAULT_HOST_DISK_GB, prefix="host-")
    start.add_argument("--max-concurrent-live-migrations", type=int,
                       default=constants.DEFAULT_MAX_CONCURRENT_LIVE_MIGRATIONS,
                       help="Live migrations each host runs at once "
                       "(default: %(default)s).")
    start.add_argument("--timeout", type=float, default=control.START_TIMEOUT,
                       metavar="SECONDS",
                       help="How long to wait for the sandbox to be ready.")

    status = _command(commands, "status", _status,
                      "Show the sandbox's hosts, flavors and image.")
    _format_argument(status)

    stop = _command(commands, "stop", _stop, "Stop the sandbox.")
    stop.add_argument("--timeout", type=float, default=30.0,
                      metavar="SECONDS",
                      help="Kill the sandbox if it has not stopped by then.")

    boot = _command(commands, "boot", _boot,
                    "Create servers on a chosen host, as admin.")
    boot.add_argument("--host", required=True, help="Compute host.")
    boot.add_argument("--count", type=int, default=1,
                      help="Number of servers (default: 1).")
    boot.add_argument("--flavor", default=None,
                      help="Flavor name or id (default: m1.tiny).")
    boot.add_argument("--stopped", action="store_true",
                      help="Stop the servers once they are ACTIVE.")
    boot.add_argument("--metadata", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="Server metadata; repeat for more keys, e.g. "
                      f"{constants.META_LIVE_MIGRATION_DURATION}=5.")
    boot.add_argument("--name-prefix", default=None,
                      help="Servers are named PREFIX-001, PREFIX-002...")
    boot.add_argument("--config-drive", action="store_true",
                      help="Give the servers a config drive.")
    boot.add_argument("--boot-from-volume", action="store_true",
                      help="Boot from a volume made from the image.")
    _format_argument(boot)

    defaults = _command(commands, "set-defaults", _set_defaults,
                        "Change how migrations behave by default.")
    defaults.add_argument("--live-migration-duration", type=float,
                          metavar="SECONDS")
    defaults.add_argument("--live-migration-result",
                          choices=constants.LIVE_MIGRATION_RESULTS)
    defaults.add_argument("--cold-migration-delay", type=float,
                          metavar="SECONDS")
    _format_argument(defaults)

    capacity = _command(commands, "set-capacity", _set_capacity,
                        "Change a host's capacity (Placement sees it now).")
    capacity.add_argument("--host", required=True, help="Compute host.")
    _capacity_arguments(capacity, None, None, None, prefix="")

    stop_compute = _command(commands, "stop-compute", _stop_compute,
                            "Stop a host's nova-compute (it goes down).")
    stop_compute.add_argument("--host", required=True, help="Compute host.")

    start_compute = _command(commands, "start-compute", _start_compute,
                             "Start a host's nova-compute again.")
    start_compute.add_argument("--host", required=True, help="Compute host.")

    stats = _command(commands, "stats", _stats,
                     "Show the API requests counted since the last reset.")
    stats.add_argument("--reset", action="store_true",
                       help="Start counting from zero after showing them.")
    _format_argument(stats)


def _command(commands: Any, name: str, handler: Handler,
             summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary)
    parser.add_argument("--state-dir", required=True, metavar="DIR",
                        help="The sandbox's state directory.")
    parser.set_defaults(func=handler)
    return parser


def _format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"),
                        default="table", help="Output format.")


def _capacity_arguments(parser: argparse.ArgumentParser,
                        vcpus: int | None, ram_mb: int | None,
                        disk_gb: int | None, prefix: str) -> None:
    for name, default, unit in (("vcpus", vcpus, "VCPUs"),
                                ("ram-mb", ram_mb, "memory in MiB"),
                                ("disk-gb", disk_gb, "local disk in GiB")):
        shown = " (default: %(default)s)" if default is not None else ""
        parser.add_argument(f"--{prefix}{name}", type=int, default=default,
                            help=f"The host's {unit}{shown}.")


def _start(conf: Any, args: argparse.Namespace) -> int:
    sandbox = control.start(
        args.state_dir, args.computes,
        live_migration_duration=args.live_migration_duration,
        cold_migration_delay=args.cold_migration_delay,
        token_ttl=args.token_ttl,
        host_vcpus=args.host_vcpus,
        host_ram_mb=args.host_ram_mb,
        host_disk_gb=args.host_disk_gb,
        max_concurrent_live_migrations=args.max_concurrent_live_migrations,
        timeout=args.timeout,
    )
    print(f"Sandbox with {len(sandbox.hosts)} compute hosts started in "
          f"{sandbox.start_seconds:.1f} s (pid {sandbox.pid}).")
    print(f"Compute API: {sandbox.endpoints['compute']}")
    print(f"clouds.yaml: {sandbox.clouds_yaml} (clouds "
          f"{constants.CLOUD_ADMIN}, {constants.CLOUD_DEMO}, "
          f"{constants.CLOUD_APPCRED})")
    print(f"Configuration: {sandbox.config_file}")
    return 0


def _status(conf: Any, args: argparse.Namespace) -> int:
    document = control.status(args.state_dir)
    if args.format == "json":
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    if not document["running"]:
        print(f"No sandbox runs in {document['state_dir']}.")
        return 0
    print(f"Sandbox pid {document['pid']}, compute API "
          f"{document['endpoints']['compute']}")
    print(f"Configuration: {document['config_file']}")
    print()
    rows = [
        (host, item["state"], item["status"],
         "yes" if item["running"] else "no", str(item["servers"]),
         str(item["capacity"]["vcpus"]), str(item["capacity"]["memory_mb"]),
         str(item["capacity"]["local_gb"]))
        for host, item in sorted(document["hosts"].items())
    ]
    _print_table(("HOST", "STATE", "STATUS", "RUNNING", "SERVERS", "VCPUS",
                  "RAM_MB", "DISK_GB"), rows)
    print()
    _print_table(("FLAVOR", "ID", "VCPUS", "RAM_MB", "DISK_GB", "EPHEMERAL",
                  "SWAP"),
                 [(f["name"], f["id"], str(f["vcpus"]), str(f["ram"]),
                   str(f["disk"]), str(f["ephemeral"]), str(f["swap"]))
                  for f in document["flavors"]])
    print()
    for image in document["images"]:
        print(f"Image: {image['name']} ({image['id']})")
    defaults = document["defaults"]
    print(f"Defaults: live migration {defaults['live_migration_duration']} s, "
          f"{defaults['live_migration_result']}; cold migration "
          f"{defaults['cold_migration_delay']} s")
    return 0


def _stop(conf: Any, args: argparse.Namespace) -> int:
    if control.stop(args.state_dir, timeout=args.timeout):
        print(f"Stopped the sandbox of {os.path.abspath(args.state_dir)}.")
    else:
        print(f"No sandbox runs in {os.path.abspath(args.state_dir)}.")
    return 0


def _boot(conf: Any, args: argparse.Namespace) -> int:
    metadata = {}
    for item in args.metadata:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise exceptions.InvalidInput(
                f"--metadata wants KEY=VALUE, not {item!r}.")
        metadata[key] = value
    servers = control.boot(
        args.state_dir, args.host, args.count, flavor=args.flavor,
        stopped=args.stopped, metadata=metadata,
        name_prefix=args.name_prefix, config_drive=args.config_drive,
        boot_from_volume=args.boot_from_volume)
    if args.format == "json":
        print(json.dumps(servers, indent=2))
    else:
        _print_table(("ID", "NAME", "HOST", "STATUS"),
                     [(s["id"], s["name"], s["host"], s["status"])
                      for s in servers])
    return 0


def _set_defaults(conf: Any, args: argparse.Namespace) -> int:
    defaults = control.SandboxClient(args.state_dir).set_defaults(
        live_migration_duration=args.live_migration_duration,
        live_migration_result=args.live_migration_result,
        cold_migration_delay=args.cold_migration_delay)
    if args.format == "json":
        print(json.dumps(defaults, indent=2, sort_keys=True))
    else:
        for key, value in sorted(defaults.items()):
            print(f"{key} = {value}")
    return 0


def _set_capacity(conf: Any, args: argparse.Namespace) -> int:
    if args.vcpus is None and args.ram_mb is None and args.disk_gb is None:
        raise exceptions.InvalidInput(
            "Give at least one of --vcpus, --ram-mb, --disk-gb.")
    capacity = control.SandboxClient(args.state_dir).set_host_capacity(
        args.host, vcpus=args.vcpus, memory_mb=args.ram_mb,
        disk_gb=args.disk_gb)
    print(f"{args.host}: {capacity['vcpus']} VCPUs, "
          f"{capacity['memory_mb']} MiB, {capacity['local_gb']} GiB")
    return 0


def _stop_compute(conf: Any, args: argparse.Namespace) -> int:
    changed = control.SandboxClient(args.state_dir).stop_compute(args.host)
    print(f"nova-compute on {args.host} "
          f"{'stopped' if changed else 'was not running'}.")
    return 0


def _start_compute(conf: Any, args: argparse.Namespace) -> int:
    changed = control.SandboxClient(args.state_dir).start_compute(args.host)
    print(f"nova-compute on {args.host} "
          f"{'started' if changed else 'was running already'}.")
    return 0


def _stats(conf: Any, args: argparse.Namespace) -> int:
    client = control.SandboxClient(args.state_dir)
    document = client.reset_stats() if args.reset else client.request_stats()
    if args.format == "json":
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    print(f"Since {document['since']}:")
    rows = [(service, route, str(count))
            for service, counts in document["services"].items()
            for route, count in counts["requests"].items()]
    _print_table(("SERVICE", "REQUEST", "COUNT"), rows)
    return 0


def _print_table(header: Sequence[str],
                 rows: Iterable[Sequence[str]]) -> None:
    rows = list(rows)
    widths = [max(len(str(cell)) for cell in column)
              for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width)
                        for cell, width in zip(row, widths, strict=True))
              .rstrip())
