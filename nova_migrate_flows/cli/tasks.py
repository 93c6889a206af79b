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
"""``list-tasks``: the installed task plugins and kinds of move."""

from typing import Any

from oslo_config import cfg

from nova_migrate_flows.cli import output


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "list-tasks",
        help="List the installed task plugins and kinds of move with what "
        "each does.",
    )
    output.add_format_argument(parser)
    parser.set_defaults(func=list_tasks)


def list_tasks(conf: cfg.ConfigOpts, args: Any) -> int:
    from nova_migrate_flows.moves import registry
    from nova_migrate_flows.tasks import loader

    rows: list[dict[str, Any]] = []
    for name, plugin in loader.installed().items():
        if isinstance(plugin, BaseException):
            rows.append({"name": name, "kind": "BROKEN",
                         "description": f"fails to load: {plugin}"})
        else:
            rows.append({
                "name": name,
                "kind": getattr(plugin, "kind", "?"),
                "description": plugin.description()
                if hasattr(plugin, "description") else "",
            })
    configured = {
        "preflight": list(conf.migration.preflight_tasks),
        "verify": list(conf.migration.verify_tasks),
        "hook": [conf.maintenance.hook_task],
    }
    for row in rows:
        row["configured"] = row["name"] in configured.get(row["kind"], ())
    moves: list[dict[str, Any]] = [{
        "name": name,
        "throttle_pool": kind.throttle_pool,
        "migration_type": kind.migration_type,
        "tasks": [task for task in (kind.start_task, kind.wait_task,
                                    kind.settle_task, kind.finish_task)
                  if task],
        "description": kind.summary,
    } for name, kind in registry.installed().items()]
    if args.format == "json":
        output.print_json({"tasks": rows, "configured": configured,
                           "moves": moves})
        return 0
    output.table(
        ("Name", "Kind", "Configured", "Description"),
        [(r["name"], r["kind"], "yes" if r["configured"] else "",
          r["description"]) for r in rows],
    )
    output.table(
        ("Move kind", "Pool", "Nova records", "Tasks", "Description"),
        [(m["name"], m["throttle_pool"], m["migration_type"] or "nothing",
          ", ".join(m["tasks"]), m["description"]) for m in moves],
    )
    return 0
