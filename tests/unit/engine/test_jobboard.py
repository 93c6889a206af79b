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
"""Connecting to the configured jobboard (no server needed here)."""

import socket

import pytest
from kazoo import exceptions as kazoo_exceptions
from oslo_config import cfg
from taskflow import exceptions as taskflow_exceptions
from taskflow.jobs.backends import impl_zookeeper

from nova_migrate_flows import exceptions, opts
from nova_migrate_flows.engine import jobboard


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project="nova-migrate-flows-tests", default_config_files=[],
         default_config_dirs=[])
    return conf


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_redis_is_one_clear_error(conf):
    port = closed_port()
    conf.set_override("redis_port", port, "jobboard")

    with pytest.raises(exceptions.ConfigurationError) as caught:
        with jobboard.connected(conf, None):
            pytest.fail("connected to nothing")

    message = str(caught.value)
    assert message.startswith("[jobboard]: cannot connect to the redis "
                              f"jobboard at 127.0.0.1:{port}: ")
    assert "\n" not in message


def test_the_zookeeper_session_timeout_is_the_claim_expiry(conf):
    conf.set_override("backend", "zookeeper", "jobboard")
    conf.set_override("claim_expiry", 7, "jobboard")

    board = jobboard.board_from_conf(conf, None)

    assert isinstance(board, impl_zookeeper.ZookeeperJobBoard)
    assert board._client._session_timeout == 7000


def test_a_zookeeper_refusing_the_version_check_says_what_to_allow(
        conf, monkeypatch):
    conf.set_override("backend", "zookeeper", "jobboard")
    conf.set_override("zookeeper_hosts", "zk1:2181", "jobboard")

    def refused(board):
        cause = kazoo_exceptions.KazooException(
            "Unable to fetch useable server version after trying 4 times")
        raise taskflow_exceptions.JobFailure(
            "Failed to do post-connection initialization") from cause

    monkeypatch.setattr(impl_zookeeper.ZookeeperJobBoard, "connect",
                        refused)

    with pytest.raises(exceptions.ConfigurationError) as caught:
        with jobboard.connected(conf, None):
            pytest.fail("connected to nothing")

    assert str(caught.value) == (
        "[jobboard]: cannot connect to the zookeeper jobboard at zk1:2181: "
        "Unable to fetch useable server version after trying 4 times "
        "(allow the 'envi' command: 4lw.commands.whitelist = envi in "
        "zoo.cfg)")
