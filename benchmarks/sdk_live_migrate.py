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
"""B4's baseline: live-migrate one server with openstacksdk, nothing else.

``python benchmarks/sdk_live_migrate.py CLOUD SERVER``: look the server up,
send the live migration (Nova's scheduler picks the host), then read the
server every 0.25 s until it is ACTIVE on another host (exit 0) or in ERROR
or back ACTIVE where it was with its migration over (exit 1). No check
before, no verification after: what a hand-written script does. The cloud
comes from the clouds.yaml that ``OS_CLIENT_CONFIG_FILE`` names.
"""

import sys
import time

import openstack

POLL = 0.25
TIMEOUT = 600.0


def main(argv: list[str]) -> int:
    cloud, server_id = argv
    compute = openstack.connect(cloud=cloud).compute
    source = compute.get_server(server_id).compute_host
    compute.live_migrate_server(server_id, host=None, block_migration="auto")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(POLL)
        server = compute.get_server(server_id)
        if server.status == "ERROR":
            return 1
        if server.status == "ACTIVE" and server.task_state is None:
            return 0 if server.compute_host != source else 1
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
