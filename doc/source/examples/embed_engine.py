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
"""Live-migrate one server with nova-migrate-flows' flow, on your own engine.

A service that runs its own TaskFlow engines (its own executor, listeners
and persistence) builds the flow with the factory, and gives the tasks a
Runtime as the transient ``runtime`` store value, as the runner does::

    python embed_engine.py --config-file nova-migrate-flows.conf SERVER
"""

import concurrent.futures
import sys

import taskflow.engines
from oslo_config import cfg

from nova_migrate_flows import constants, opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import connection
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.flows import single
from nova_migrate_flows.request import Operation


def main(argv: list[str]) -> int:
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf.register_cli_opt(cfg.StrOpt("server", positional=True))
    conf(argv, project="nova-migrate-flows")

    compute = connection.compute_from_conf(conf)
    server = compute.find_server(conf.server)
    request = request_mod.build_request(
        conf, Operation.LIVE_MIGRATE, servers=[server.id]
    )
    # The factory takes plain, serialisable arguments only.
    flow = single.live_migration_flow(
        server.id,
        preflight_tasks=conf.migration.preflight_tasks,
        verify_tasks=conf.migration.verify_tasks,
    )
    runtime = runtime_mod.Runtime(conf, compute, request)
    runtime.start()  # the poller that watches every migration
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as executor:
            engine = taskflow.engines.load(
                flow,
                store={
                    constants.REQUEST: request.to_dict(),
                    constants.SERVERS: {server.id: server.to_dict()},
                },
                engine="parallel",
                executor=executor,
            )
            # Never persisted: connections, threads, credentials.
            engine.storage.inject({constants.RUNTIME: runtime}, transient=True)
            engine.run()
            outcome = engine.storage.fetch(
                constants.server_key("outcome", server.id)
            )
    finally:
        runtime.close()
    print(f"{outcome['name']}: {outcome['status']} "
          f"{outcome['source']} -> {outcome['destination']}"
          + (f" ({outcome['reason']})" if outcome["reason"] else ""))
    return 0 if outcome["status"] == "migrated" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
