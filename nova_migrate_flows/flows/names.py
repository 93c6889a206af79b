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
"""Names of flows, atoms and store keys, in one place.

TaskFlow rejects duplicate atom names and ambiguous provides, so every name
that repeats per server or per host carries the server's id or the host's
name. ``tests/unit/test_names.py`` checks they stay unique.
"""

#: Store keys shared by the whole run.
RUNTIME = "runtime"
REQUEST = "request"
SERVERS = "servers"
PLAN = "plan"


def preflight_key(plugin: str) -> str:
    """Where a preflight check puts its verdicts."""
    return f"preflight:{plugin}"


def server_key(what: str, server_id: str) -> str:
    """A store key (or atom name) of one server."""
    return f"{what}[{server_id}]"


def host_key(what: str, host: str) -> str:
    """A store key (or atom name) of one host."""
    return f"{what}@{host}"


def server_flow(server_id: str) -> str:
    return f"server[{server_id}]"


def host_flow(operation: str, host: str) -> str:
    return f"{operation}@{host}"


def preflight_flow(operation: str) -> str:
    return f"{operation}:preflight"


def disable_flow(operation: str) -> str:
    return f"{operation}:disable"
