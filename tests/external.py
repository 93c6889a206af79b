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
"""The external servers some tests need, as ``.ci/run`` exports them.

A test marked ``redis``, ``postgresql``, ``zookeeper``, ``mistral`` or
``rabbitmq`` fails
(it is not skipped) when its server is not given: deselect it with ``-m``
instead. So does a test that controls its server (stops and starts it)
when the command that does is not given.
"""

import os
import shlex

import pytest

#: Marker: (environment variable, what it points at).
SERVERS = {
    "redis": ("NMF_TEST_REDIS_URL", "a Redis server"),
    "postgresql": ("NMF_TEST_POSTGRESQL_URL", "a PostgreSQL server"),
    "zookeeper": ("NMF_TEST_ZOOKEEPER_HOSTS", "a ZooKeeper server"),
    "mistral": ("NMF_TEST_MISTRAL_URL", "a Mistral server (its v2 API)"),
    "rabbitmq": ("NMF_TEST_RABBIT_URL", "a RabbitMQ server (rabbit://...)"),
}

#: Marker: (environment variable, the command that controls its server).
CONTROLS = {
    "rabbitmq": ("NMF_TEST_RABBIT_CTL",
                 "rabbitmqctl for the test node (its Erlang cookie's HOME "
                 "and -n NODE)"),
}


def address(marker: str) -> str:
    """Where the test's ``marker`` server is; fails the test if unset."""
    variable, what = SERVERS[marker]
    value = os.environ.get(variable)
    if not value:
        pytest.fail(f"{variable} is not set: start {what} (.ci/run does) "
                    f"or deselect with -m 'not {marker}'")
    return value


def control(marker: str) -> list[str]:
    """The command (split as a shell does) that controls the test's
    ``marker`` server; fails the test if unset."""
    variable, what = CONTROLS[marker]
    value = os.environ.get(variable)
    if not value:
        pytest.fail(f"{variable} is not set: give {what} (.ci/run does) "
                    f"or deselect with -m 'not {marker}'")
    return shlex.split(value)
