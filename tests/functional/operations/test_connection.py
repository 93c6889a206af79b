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
"""The two ways to reach Nova, through the sandbox: a clouds.yaml entry
(named in the configuration, or found the usual openstacksdk way), and
keystoneauth options in ``[nova]`` as OpenStack services configure them."""

import pytest
import yaml

pytestmark = pytest.mark.functional


def sandbox_cloud(sandbox, name):
    with open(sandbox.clouds_yaml) as handle:
        return yaml.safe_load(handle)["clouds"][name]


def test_a_cloud_found_through_os_client_config_file(nmf, sandbox,
                                                     monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", sandbox.clouds_yaml)

    # The sandbox's configuration names the file; an empty value here
    # leaves openstacksdk to find it the usual way.
    ran = nmf.configured("[nova]\ncloud = sandbox\nclouds_yaml =\n",
                         "migration-list", "--format", "json")

    assert ran.code == 0, ran.err
    assert "migrations" in ran.json


def test_an_explicit_clouds_yaml_wins_over_the_environment(
        nmf, sandbox, boot_servers, sdk, tmp_path, monkeypatch):
    """The operator's shell names another file that defines a cloud of the
    same name, at an endpoint nobody serves: the configured file wins, and
    the run says which cloud and endpoint it acted on."""
    elsewhere = sandbox_cloud(sandbox, "sandbox")
    elsewhere["auth"] = dict(elsewhere["auth"],
                             auth_url="http://127.0.0.1:9/identity/v3")
    other = tmp_path / "other-clouds.yaml"
    other.write_text(yaml.safe_dump({"clouds": {"sandbox": elsewhere}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(other))
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", str(other))
    (server,) = boot_servers("host1", name_prefix="explicit-cloud")
    log_file = tmp_path / "nmf.log"

    ran = nmf("--log-file", str(log_file), "live-migrate", server["id"],
              "host2", "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.result_of(server["id"])["status"] == "migrated"
    assert sdk.compute.get_server(server["id"]).compute_host == "host2"
    endpoint = sdk.compute.get_endpoint()
    assert f"cloud sandbox ({sandbox.clouds_yaml}), compute endpoint " \
        f"{endpoint}" in log_file.read_text()
    shown = nmf("flows", "show", ran.json["run_id"], "--format", "json")
    assert shown.json["cloud"] == {"cloud": "sandbox",
                                   "clouds_yaml": sandbox.clouds_yaml,
                                   "compute_endpoint": endpoint}


@pytest.mark.parametrize("cloud", ["sandbox", "sandbox-appcred"],
                         ids=["password", "application-credential"])
def test_keystoneauth_options_in_the_nova_group(nmf, sandbox, cloud):
    entry = sandbox_cloud(sandbox, cloud)
    auth = entry["auth"]
    options = "\n".join(f"{key} = {value}" for key, value in auth.items())
    auth_type = entry.get("auth_type", "password")

    ran = nmf.configured(
        "[nova]\ncloud =\n"
        f"auth_type = {auth_type}\n{options}\n"
        "region_name = RegionOne\nvalid_interfaces = public\n"
        "[placement]\nregion_name = RegionOne\nvalid_interfaces = public\n",
        "host-evacuate-live", "host1", "--dry-run", "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.json["dry_run"] is True

