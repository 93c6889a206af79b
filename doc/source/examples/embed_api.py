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
"""A service that empties a compute host with nova-migrate-flows.

The service owns its ConfigOpts: its own options and nova-migrate-flows'
live side by side in its configuration file. Run it as::

    python embed_api.py --config-file /etc/maintenance/maintenance.conf
"""

import sys

from oslo_config import cfg
from oslo_log import log as logging

from nova_migrate_flows import api, exceptions

LOG = logging.getLogger(__name__)

service_opts = [
    cfg.StrOpt("host", required=True,
               help="The compute host to empty for maintenance."),
]


def main(argv: list[str]) -> int:
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    conf.register_opts(service_opts, group="maintenance")
    api.register_opts(conf)  # [nova], [migration], [drain], ...
    conf(argv, project="maintenance")
    logging.setup(conf, "maintenance")
    host = conf.maintenance.host

    try:
        # First what would happen: the preflight runs, nothing changes.
        plan = api.host_evacuate_live(conf, [host], dry_run=True)
        for row in plan.to_json()["plan"]:
            print(f"plan: {row['name']} {row['action']}")
        if plan.exit_code:
            print("the preflight refused the plan; nothing was changed")
            return int(plan.exit_code)

        # Then the real thing, recorded (so it can be listed and resumed).
        result = api.host_evacuate_live(conf, [host])
    except exceptions.NovaMigrateFlowsError as exc:
        # Bad input (nothing changed), or Nova unreachable.
        print(f"refused: {exc}")
        return int(exc.exit_code)

    for outcome in result.outcomes:
        print(f"{outcome['name']}: {outcome['status']} "
              f"{outcome['source']} -> {outcome['destination']}")
    for state in result.hosts:
        print(f"{state['host']}: empty={state['empty']} "
              f"service={state['service']}")
    print(f"run {result.run_id}: exit code {int(result.exit_code)}")
    return int(result.exit_code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
