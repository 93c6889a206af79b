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
"""Watching and steering migrations: migration-list, migration-show,
migration-abort and migration-force-complete (the nova client's commands
that the seed guide uses)."""

from typing import Any

from oslo_config import cfg

from nova_migrate_flows import exceptions
from nova_migrate_flows.cli import output
from nova_migrate_flows.compute import base, models

LIST_HEADERS = ("Id", "Source Node", "Dest Node", "Source Compute",
                "Dest Compute", "Dest Host", "Status", "Instance UUID",
                "Old Flavor", "New Flavor", "Created At", "Updated At",
                "Type")
TYPES = ("live-migration", "migration", "resize", "evacuation")


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migration-list", help="List migrations, as 'nova migration-list'."
    )
    parser.add_argument("--host", help="Only those from or to this host.")
    parser.add_argument("--status", help="Only those in this status (e.g. "
                        "running, error, completed).")
    parser.add_argument("--server", help="Only those of this server (name "
                        "or id).")
    parser.add_argument("--type", dest="migration_type", choices=TYPES,
                        help="Only those of this type.")
    output.add_format_argument(parser)
    parser.set_defaults(func=migration_list)

    for name, func, text in (
        ("migration-show", migration_show,
         "Show one migration of a server, with its progress."),
        ("migration-abort", migration_abort,
         "Abort an in-progress live migration (the server stays on its "
         "source)."),
        ("migration-force-complete", migration_force_complete,
         "Force an in-progress live migration to complete (Nova pauses the "
         "server)."),
    ):
        parser = subparsers.add_parser(name, help=text)
        parser.add_argument("server", metavar="SERVER",
                            help="Name or id of the server.")
        parser.add_argument("migration_id", metavar="MIGRATION",
                            help="Id of the migration (a number).")
        if name == "migration-show":
            output.add_format_argument(parser)
        parser.set_defaults(func=func)


def _compute(conf: cfg.ConfigOpts) -> base.Compute:
    from nova_migrate_flows.compute import connection

    return connection.compute_from_conf(conf)


def _row(m: models.Migration) -> tuple[Any, ...]:
    return (m.id, m.source_node, m.dest_node, m.source_compute,
            m.dest_compute, m.dest_host, m.status, m.server_id,
            m.old_flavor, m.new_flavor, m.created_at, m.updated_at,
            m.migration_type)


def _json(m: models.Migration) -> dict[str, Any]:
    data = m.to_dict()
    data["instance_uuid"] = data.pop("server_id")
    data["type"] = data.pop("migration_type")
    return data


def migration_list(conf: cfg.ConfigOpts, args: Any) -> int:
    compute = _compute(conf)
    server_id = compute.find_server(args.server).id if args.server else None
    migrations = compute.list_migrations(
        host=args.host, status=args.status, server_id=server_id,
        migration_type=args.migration_type,
    )
    if args.format == "json":
        output.print_json({"migrations": [_json(m) for m in migrations]})
    else:
        output.table(LIST_HEADERS, [_row(m) for m in migrations])
    return 0


def _migration_id(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 1:
        raise exceptions.InvalidInput(
            f"MIGRATION {value!r}: not a migration id (a positive number, "
            "as 'nova-migrate-flow migration-list' shows)"
        )
    return number


def find_migration(
    compute: base.Compute, server: models.Server, migration_id: int
) -> models.Migration:
    """One migration of a server, with progress while it is in progress."""
    for record in compute.server_migrations(server.id):
        if record.id == migration_id:
            return record
    for record in compute.list_migrations(server_id=server.id):
        if record.id == migration_id:
            return record
    raise exceptions.InvalidInput(
        f"MIGRATION {migration_id}: server {server.name} ({server.id}) has "
        "no such migration; see 'nova-migrate-flow migration-list --server "
        f"{server.id}'"
    )


def migration_show(conf: cfg.ConfigOpts, args: Any) -> int:
    compute = _compute(conf)
    number = _migration_id(args.migration_id)
    server = compute.find_server(args.server)
    migration = find_migration(compute, server, number)
    if args.format == "json":
        output.print_json(_json(migration))
        return 0
    rows = [(k, v) for k, v in _json(migration).items()]
    if migration.percent is not None:
        rows.append(("progress", f"{migration.percent:.0f}%"))
    output.table(("Field", "Value"), rows)
    return 0


def _steer(conf: cfg.ConfigOpts, args: Any, what: str, asked: str) -> int:
    """Abort or force-complete a live migration: ``what`` it will have
    been (for refusals), ``asked`` the request's name."""
    compute = _compute(conf)
    number = _migration_id(args.migration_id)
    server = compute.find_server(args.server)
    migration = find_migration(compute, server, number)
    if migration.migration_type not in (None, "live-migration") or \
            migration.is_final:
        raise exceptions.InvalidInput(
            f"MIGRATION {number}: a {migration.migration_type or 'migration'}"
            f" that is {migration.status}; only in-progress live migrations "
            f"can be {what}"
        )
    try:
        if what == "aborted":
            compute.abort_migration(server.id, number)
        else:
            compute.force_complete_migration(server.id, number)
    except (exceptions.BadRequest, exceptions.Conflict) as exc:
        raise exceptions.InvalidInput(
            f"MIGRATION {number}: Nova refused: {exc}"
        ) from None
    # Nova answers when it accepted the request, not when it is done.
    print(f"Live migration {number} of {server.name} ({server.id}): "
          f"{asked} accepted by Nova; 'nova-migrate-flow "
          f"migration-show {server.id} {number}' shows when it ends")
    return 0


def migration_abort(conf: cfg.ConfigOpts, args: Any) -> int:
    return _steer(conf, args, "aborted", "abort")


def migration_force_complete(conf: cfg.ConfigOpts, args: Any) -> int:
    return _steer(conf, args, "forced to complete", "force-complete")
