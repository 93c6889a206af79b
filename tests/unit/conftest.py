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
"""Fixtures of the unit tests: a configuration and an in-memory cloud."""

import pytest
from oslo_config import cfg
from oslo_config import fixture as config_fixture

from nova_migrate_flows import opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake
from nova_migrate_flows.engine import runner as runner_mod


@pytest.fixture
def conf():
    """A configuration with every option registered, polling fast."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    fixture = config_fixture.Config(conf)
    fixture.setUp()
    conf([], project="nova-migrate-flows-tests", default_config_files=[],
         default_config_dirs=[])
    # A busy server is waited for a moment only.
    fixture.config(group="migration", poll_interval=0.02,
                   poll_interval_min=0.01, busy_wait=0.1)
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def cloud():
    """A fake cloud of four empty hosts."""
    return fake.FakeCompute(4, steps=2)


@pytest.fixture
def run(conf, cloud):
    """Run an operation against the fake cloud: ``run(op, **request)``."""

    def run(operation, **given):
        request = request_mod.build_request(
            conf.conf, request_mod.Operation(operation), **given
        )
        return runner_mod.Runner(conf.conf, cloud).run(request)

    return run
