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
"""Mistral's API, engine, executor, notifier and periodic tasks in ONE
process, for the tests (run with the Python of Mistral's virtualenv).

``mistral-server --server all`` forks a process per component, so the
in-memory ``fake:/`` transport cannot carry their RPC; here they are the
services of one oslo.service ``ServiceLauncher`` instead, and no message
broker is needed. Usage: ``mistral_server.py --config-file mistral.conf``.
"""

import sys

from mistral import config
from mistral.api import service as api_service
from mistral.engine import engine_server
from mistral.executors import executor_server
from mistral.notifiers import notification_server
from mistral.rpc import base as rpc
from mistral.services import periodic_server
from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import service


def main() -> int:
    conf = cfg.CONF
    conf.register_cli_opts(config.CLI_OPTS)
    config.parse_args(sys.argv[1:])
    logging.setup(conf, "Mistral")
    rpc.get_transport()
    launcher = service.ServiceLauncher(conf)
    for server in (engine_server.get_oslo_service(),
                   executor_server.get_oslo_service(),
                   notification_server.get_oslo_service(),
                   periodic_server.get_oslo_service(),
                   api_service.WSGIService("mistral_api")):
        launcher.launch_service(server)
    launcher.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
