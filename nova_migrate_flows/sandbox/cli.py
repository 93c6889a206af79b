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
from nova_migrate_flows.sandbox import constants, control

Handler = Callable[[Any, argparse.Namespace], int]

#: Prefix of every argument's destination: oslo.config refuses sub-command
#: arguments named like one of its options (``state_dir`` is one).
_PREFIX = "sandbox_"


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
    commands = parser.add_subparsers(dest=_PREFIX + "command",
                                     metavar="COMMAND", required=True)

    start = _command(commands, "start", _start,
                     "Start a sandbox and wait until it is ready.")
    _option(start, "computes", type=int, default=constants.DEFAULT_COMPUTES,
            help="Number of compute hosts (default: %(default)s).")
    _option(start, "live-migration-duration", type=float,
            default=constants.DEFAULT_LIVE_MIGRATION_DURATION,
            metavar="SECONDS",
            help="Default duration of a live migration "
            "(default: %(default)s).")
    _option(start, "cold-migration-delay", type=float,
            default=constants.DEFAULT_COLD_MIGRATION_DELAY, metavar="SECONDS",
            help="Default disk-copy time of a cold migration "
            "(default: %(default)s).")
    _option(start, "token-ttl", type=float,
            default=constants.DEFAULT_TOKEN_TTL, metavar="SECONDS",
            help="Token lifetime (default: %(default)s).")
    _capacity_arguments(start, constants.DEFAULT_HOST_VCPUS,
                        constants.DEFAULT_HOST_RAM_MB,
                        constants.DEFAULT_HOST_DISK_GB, prefix="host-")
    _option(start, "max-concurrent-live-migrations", type=int,
            default=constants.DEFAULT_MAX_CONCURRENT_LIVE_MIGRATIONS,
            help="Live migrations each host runs at once "
            "(default: %(default)s).")
    _option(start, "timeout", type=float, default=control.START_TIMEOUT,
            metavar="SECONDS",
            help="How long to wait for the sandbox to be ready.")
    _option(start, "python", default=None, metavar="PATH",
            help="Run the cloud with this Python interpreter (3.10 or "
            "later), e.g. that of a virtualenv with an older Nova; "
            "nova-migrate-flows need not be installed there "
            "(default: the tool's own).")
    _option(start, "notifications", default=None, metavar="TRANSPORT_URL",
            help="Have Nova emit its versioned notifications to this "
            "oslo.messaging transport (e.g. rabbit://guest:guest@"
            "127.0.0.1:5672/), for '[watch] source = notifications'.")

    status = _command(commands, "status", _status,
                      "Show the sandbox's hosts, flavors and image.")
    _format_argument(status)

    stop = _command(commands, "stop", _stop, "Stop the sandbox.")
    _option(stop, "timeout", type=float, default=30.0, metavar="SECONDS",
            help="Kill the sandbox if it has not stopped by then.")

    boot = _command(commands, "boot", _boot,
                    "Create servers on a chosen host, as admin.")
    _option(boot, "host", required=True, help="Compute host.")
    _option(boot, "count", type=int, default=1,
            help="Number of servers (default: 1).")
    _option(boot, "flavor", default=None,
            help="Flavor name or id (default: m1.tiny).")
    _option(boot, "stopped", action="store_true",
            help="Stop the servers once they are ACTIVE.")
    _option(boot, "metadata", action="append", default=[],
            metavar="KEY=VALUE",
            help="Server metadata; repeat for more keys, e.g. "
            f"{constants.META_LIVE_MIGRATION_DURATION}=5.")
    _option(boot, "name-prefix", default=None,
            help="Servers are named PREFIX-001, PREFIX-002...")
    _option(boot, "config-drive", action="store_true",
            help="Give the servers a config drive.")
    _option(boot, "boot-from-volume", action="store_true",
            help="Boot from a volume made from the image.")
    _option(boot, "group", default=None, metavar="GROUP_ID",
            help="Boot the servers into this server group.")
    _format_argument(boot)

    defaults = _command(commands, "set-defaults", _set_defaults,
                        "Change how migrations behave by default.")
    _option(defaults, "live-migration-duration", type=float,
            metavar="SECONDS")
    _option(defaults, "live-migration-result",
            choices=constants.LIVE_MIGRATION_RESULTS)
    _option(defaults, "cold-migration-delay", type=float, metavar="SECONDS")
    _format_argument(defaults)

    capacity = _command(commands, "set-capacity", _set_capacity,
                        "Change a host's capacity (Placement sees it now).")
    _option(capacity, "host", required=True, help="Compute host.")
    _capacity_arguments(capacity, None, None, None, prefix="")

    stop_compute = _command(commands, "stop-compute", _stop_compute,
                            "Stop a host's nova-compute (it goes down).")
    _option(stop_compute, "host", required=True, help="Compute host.")

    start_compute = _command(commands, "start-compute", _start_compute,
                             "Start a host's nova-compute again.")
    _option(start_compute, "host", required=True, help="Compute host.")

    stats = _command(commands, "stats", _stats,
                     "Show the API requests counted since the last reset.")
    _option(stats, "reset", action="store_true",
            help="Start counting from zero after showing them.")
    _format_argument(stats)


def _command(commands: Any, name: str, handler: Handler,
             summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary)
    _option(parser, "state-dir", required=True, metavar="DIR",
            help="The sandbox's state directory.")
    parser.set_defaults(func=handler)
    return parser


def _option(parser: argparse.ArgumentParser, flag: str,
            **kwargs: Any) -> None:
    """Add ``--flag``, its value stored under a prefixed name."""
    parser.add_argument(f"--{flag}", dest=_PREFIX + flag.replace("-", "_"),
                        **kwargs)


class _Options:
    """The parsed arguments of a sub-command, by their unprefixed names."""

    def __init__(self, args: Any) -> None:
        self._args = args

    def __getattr__(self, name: str) -> Any:
        return getattr(self._args, _PREFIX + name)


def _format_argument(parser: argparse.ArgumentParser) -> None:
    _option(parser, "format", choices=("table", "json"), default="table",
            help="Output format.")


def _capacity_arguments(parser: argparse.ArgumentParser,
                        vcpus: int | None, ram_mb: int | None,
                        disk_gb: int | None, prefix: str) -> None:
    for name, default, unit in (("vcpus", vcpus, "VCPUs"),
                                ("ram-mb", ram_mb, "memory in MiB"),
                                ("disk-gb", disk_gb, "local disk in GiB")):
        shown = " (default: %(default)s)" if default is not None else ""
        _option(parser, f"{prefix}{name}", type=int, default=default,
                help=f"The host's {unit}{shown}.")


def _start(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    sandbox = control.start(
        options.state_dir, options.computes,
        live_migration_duration=options.live_migration_duration,
        cold_migration_delay=options.cold_migration_delay,
        token_ttl=options.token_ttl,
        host_vcpus=options.host_vcpus,
        host_ram_mb=options.host_ram_mb,
        host_disk_gb=options.host_disk_gb,
        max_concurrent_live_migrations=options.max_concurrent_live_migrations,
        timeout=options.timeout,
        python=options.python,
        notifications=options.notifications,
    )
    print(f"Sandbox with {len(sandbox.hosts)} compute hosts started in "
          f"{sandbox.start_seconds:.1f} s (pid {sandbox.pid}).")
    print(f"Compute API: {sandbox.endpoints['compute']}")
    if sandbox.nova:
        print(_nova_line(sandbox.nova, sandbox.python))
    print(f"clouds.yaml: {sandbox.clouds_yaml} (clouds "
          f"{constants.CLOUD_ADMIN}, {constants.CLOUD_DEMO}, "
          f"{constants.CLOUD_APPCRED})")
    print(f"Configuration: {sandbox.config_file}")
    return 0


def _status(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    document = control.status(options.state_dir)
    if options.format == "json":
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    if not document["running"]:
        print(f"No sandbox runs in {document['state_dir']}.")
        return 0
    print(f"Sandbox pid {document['pid']}, compute API "
          f"{document['endpoints']['compute']}")
    if document.get("nova"):
        print(_nova_line(document["nova"], document.get("python") or {}))
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


def _nova_line(nova: dict[str, Any], python: dict[str, Any]) -> str:
    """``Nova 26.3.0 (eventlet, Python 3.10.13), compute API 2.1 to
    2.93``."""
    how = nova.get("concurrency", "?")
    if python.get("version"):
        how += f", Python {python['version']}"
    return (f"Nova {nova.get('release', '?')} ({how}), compute API "
            f"{nova.get('min_microversion', '?')} to "
            f"{nova.get('max_microversion', '?')}")


def _stop(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    if control.stop(options.state_dir, timeout=options.timeout):
        print(f"Stopped the sandbox of {os.path.abspath(options.state_dir)}.")
    else:
        print(f"No sandbox runs in {os.path.abspath(options.state_dir)}.")
    return 0


def _boot(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    metadata = {}
    for item in options.metadata:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise exceptions.InvalidInput(
                f"--metadata wants KEY=VALUE, not {item!r}.")
        metadata[key] = value
    servers = control.boot(
        options.state_dir, options.host, options.count, flavor=options.flavor,
        stopped=options.stopped, metadata=metadata,
        name_prefix=options.name_prefix, config_drive=options.config_drive,
        boot_from_volume=options.boot_from_volume, group=options.group)
    if options.format == "json":
        print(json.dumps(servers, indent=2))
    else:
        _print_table(("ID", "NAME", "HOST", "STATUS"),
                     [(s["id"], s["name"], s["host"], s["status"])
                      for s in servers])
    return 0


def _set_defaults(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    defaults = control.SandboxClient(options.state_dir).set_defaults(
        live_migration_duration=options.live_migration_duration,
        live_migration_result=options.live_migration_result,
        cold_migration_delay=options.cold_migration_delay)
    if options.format == "json":
        print(json.dumps(defaults, indent=2, sort_keys=True))
    else:
        for key, value in sorted(defaults.items()):
            print(f"{key} = {value}")
    return 0


def _set_capacity(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    if (options.vcpus, options.ram_mb, options.disk_gb) == (None,) * 3:
        raise exceptions.InvalidInput(
            "Give at least one of --vcpus, --ram-mb, --disk-gb.")
    capacity = control.SandboxClient(options.state_dir).set_host_capacity(
        options.host, vcpus=options.vcpus, memory_mb=options.ram_mb,
        disk_gb=options.disk_gb)
    print(f"{options.host}: {capacity['vcpus']} VCPUs, "
          f"{capacity['memory_mb']} MiB, {capacity['local_gb']} GiB")
    return 0


def _stop_compute(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    client = control.SandboxClient(options.state_dir)
    changed = client.stop_compute(options.host)
    print(f"nova-compute on {options.host} "
          f"{'stopped' if changed else 'was not running'}.")
    return 0


def _start_compute(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    client = control.SandboxClient(options.state_dir)
    changed = client.start_compute(options.host)
    print(f"nova-compute on {options.host} "
          f"{'started' if changed else 'was running already'}.")
    return 0


def _stats(conf: Any, args: argparse.Namespace) -> int:
    options = _Options(args)
    client = control.SandboxClient(options.state_dir)
    if options.reset:
        document = client.reset_stats()
    else:
        document = client.request_stats()
    if options.format == "json":
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
