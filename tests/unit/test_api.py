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
"""The embedding API, with a service's own ConfigOpts."""

from oslo_config import cfg

from nova_migrate_flows import api
from nova_migrate_flows.compute import fake


def test_a_service_runs_an_evacuation_with_its_own_conf(tmp_path):
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("service_option", default="mine"))
    api.register_opts(conf)
    conf([], default_config_files=[], default_config_dirs=[])
    conf.set_override("state_dir", str(tmp_path))
    conf.set_override("poll_interval", 0.02, "migration")
    conf.set_override("poll_interval_min", 0.01, "migration")
    cloud = fake.FakeCompute(3, steps=1)
    ids = [cloud.add_server("host1").id for _ in range(2)]

    result = api.host_evacuate_live(conf, ["host1"], compute=cloud)

    assert [o["status"] for o in result.outcomes] == ["migrated"] * 2
    assert {o["server"] for o in result.outcomes} == set(ids)
    assert result.exit_code == 0
    assert conf.service_option == "mine"
    assert (tmp_path / "nova-migrate-flows.sqlite").exists()


def test_live_migrate_by_name_without_recording(tmp_path):
    conf = cfg.ConfigOpts()
    api.register_opts(conf)
    conf([], default_config_files=[], default_config_dirs=[])
    conf.set_override("state_dir", str(tmp_path / "unused"))
    conf.set_override("poll_interval", 0.02, "migration")
    cloud = fake.FakeCompute(3, steps=1)
    server = cloud.add_server("host1", name="web")

    result = api.live_migrate(conf, "web", "host3", compute=cloud,
                              record=False)

    assert result.outcomes[0]["destination"] == "host3"
    assert cloud.servers[server.id].host == "host3"
    assert not (tmp_path / "unused").exists()
