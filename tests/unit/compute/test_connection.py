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
"""Which clouds.yaml a connection reads (an explicit ``[nova]
clouds_yaml`` wins over the operator's environment), and how many HTTP
connections it keeps."""

import pathlib
from typing import Any

import pytest
import requests
import yaml
from keystoneauth1 import session as ks_session
from oslo_config import cfg
from oslo_config import fixture as config_fixture

from nova_migrate_flows import constants, exceptions, opts
from nova_migrate_flows.compute import connection


def clouds_file(path: pathlib.Path, auth_url: str,
                name: str = "prod") -> str:
    path.write_text(yaml.safe_dump({"clouds": {name: {
        "auth_type": "password",
        "auth": {"auth_url": auth_url, "username": "admin",
                 "password": "secret", "project_name": "admin",
                 "user_domain_name": "Default",
                 "project_domain_name": "Default"},
        "region_name": "RegionOne",
    }}}))
    return str(path)


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    fixture = config_fixture.Config(conf)
    fixture.setUp()
    opts.register_opts(conf)
    conf([], project="nova-migrate-flows")
    yield conf
    fixture.cleanUp()


@pytest.fixture
def other_cloud_in_environment(tmp_path, monkeypatch):
    """The shell points openstacksdk at another file that defines a cloud
    of the same name, with secrets of its own."""
    other = clouds_file(tmp_path / "other.yaml", "http://other.invalid/v3")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", other)
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", other)
    monkeypatch.setenv("OS_CLOUD", "prod")
    monkeypatch.setenv("OS_AUTH_URL", "http://environment.invalid/v3")
    return other


def test_an_explicit_clouds_yaml_wins_over_the_environment(
        conf, tmp_path, other_cloud_in_environment):
    mine = tmp_path / "mine"
    mine.mkdir()
    path = clouds_file(mine / "clouds.yaml", "http://mine.invalid/v3")
    conf.set_override("cloud", "prod", opts.NOVA_GROUP)
    conf.set_override("clouds_yaml", path, opts.NOVA_GROUP)

    conn = connection.connect(conf)

    assert conn.config.config["auth"]["auth_url"] == "http://mine.invalid/v3"
    assert connection.describe_target(conf) == {
        "cloud": "prod", "clouds_yaml": path}


def test_secrets_beside_an_explicit_clouds_yaml_are_read(
        conf, tmp_path, other_cloud_in_environment):
    mine = tmp_path / "mine"
    mine.mkdir()
    path = clouds_file(mine / "clouds.yaml", "http://mine.invalid/v3")
    (mine / "secure.yaml").write_text(yaml.safe_dump(
        {"clouds": {"prod": {"auth": {"password": "from-secure-yaml"}}}}))
    conf.set_override("cloud", "prod", opts.NOVA_GROUP)
    conf.set_override("clouds_yaml", path, opts.NOVA_GROUP)

    auth = connection.connect(conf).config.config["auth"]

    assert auth["password"] == "from-secure-yaml"
    assert auth["auth_url"] == "http://mine.invalid/v3"


def test_without_clouds_yaml_the_environment_is_searched(
        conf, other_cloud_in_environment):
    conf.set_override("cloud", "prod", opts.NOVA_GROUP)

    conn = connection.connect(conf)

    assert conn.config.config["auth"]["auth_url"] == "http://other.invalid/v3"


def test_a_cloud_missing_from_the_explicit_file_is_refused(
        conf, tmp_path, other_cloud_in_environment):
    path = clouds_file(tmp_path / "clouds.yaml", "http://mine.invalid/v3",
                       name="staging")
    conf.set_override("cloud", "prod", opts.NOVA_GROUP)
    conf.set_override("clouds_yaml", path, opts.NOVA_GROUP)

    with pytest.raises(exceptions.ConfigurationError) as caught:
        connection.connect(conf)

    assert str(caught.value).startswith("[nova] cloud = prod: ")


def test_placement_endpoint_override_applies_to_a_clouds_yaml_entry(
        conf, tmp_path):
    path = clouds_file(tmp_path / "clouds.yaml", "http://mine.invalid/v3")
    conf.set_override("cloud", "prod", opts.NOVA_GROUP)
    conf.set_override("clouds_yaml", path, opts.NOVA_GROUP)
    conf.set_override("endpoint_override", "http://placement.invalid:8778",
                      opts.PLACEMENT_GROUP)

    conn = connection.connect(conf)

    assert conn.config.get_endpoint("placement") == \
        "http://placement.invalid:8778"


# -- the HTTP connection pool ----------------------------------------------

def adapters(compute: Any) -> dict[str, Any]:
    return dict(compute._conn.session.session.adapters)


@pytest.mark.parametrize("workers", [2, 64, 300], ids=lambda w: f"{w}-workers")
def test_the_pool_holds_a_connection_for_every_thread(tmp_path, conf,
                                                      workers):
    conf.set_override("cloud", "prod", group="nova")
    conf.set_override("clouds_yaml", clouds_file(
        tmp_path / "clouds.yaml", "http://keystone.invalid/v3"), group="nova")
    conf.set_override("executor_workers", workers, group="engine")

    compute = connection.compute_from_conf(conf)

    threads = (constants.TASK_THREADS_FACTOR * workers
               + constants.OTHER_REQUEST_THREADS)
    mounted = adapters(compute)
    assert set(mounted) == {"http://", "https://"}
    for adapter in mounted.values():
        # Still keystoneauth's adapter (TCP keep-alive), with a larger pool.
        assert isinstance(adapter, ks_session.TCPKeepAliveAdapter)
        assert adapter._pool_maxsize == threads
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == threads


def test_an_adapter_mounted_by_someone_else_is_left_alone(tmp_path, conf):
    conf.set_override("cloud", "prod", group="nova")
    conf.set_override("clouds_yaml", clouds_file(
        tmp_path / "clouds.yaml", "http://keystone.invalid/v3"), group="nova")
    sdk = connection.connect(conf)
    theirs = requests.adapters.HTTPAdapter(pool_maxsize=3)
    sdk.session.session.mount("https://", theirs)

    connection.size_pool(sdk, 50)

    assert sdk.session.session.adapters["https://"] is theirs
    assert sdk.session.session.adapters["http://"]._pool_maxsize == 50
