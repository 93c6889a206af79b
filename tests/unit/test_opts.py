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
"""The options: registration on the caller's ConfigOpts, and the sample."""

import pathlib
import subprocess
import sys

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from nova_migrate_flows import opts

ROOT = pathlib.Path(__file__).parents[2]
ETC = ROOT / "etc" / "nova-migrate-flows"
GENERATOR = ETC / "nova-migrate-flows-config-generator.conf"
SAMPLE = ETC / "nova-migrate-flows.conf.sample"


def test_options_go_only_on_the_conf_given():
    mine = cfg.ConfigOpts()
    opts.register_opts(mine)
    mine([], default_config_files=[], default_config_dirs=[])

    assert mine.migration.timeout_action == "abort"
    assert mine.drain.max_concurrent_live_migrations == 1
    assert mine.nova.service_type == "compute"
    assert mine.placement.service_type == "placement"
    assert "migration" not in cfg.CONF


def test_every_listed_option_is_registered():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[], default_config_dirs=[])
    # keystoneauth registers an auth plugin's own options when it loads it.
    plugin = {o.dest for o in ks_loading.get_auth_plugin_conf_options(
        "password")}
    missing = []
    for group, options in opts.list_opts():
        section = conf[group] if group else conf
        for opt in options:
            if group in {opts.NOVA_GROUP, opts.MISTRAL_GROUP} and \
                    opt.dest in plugin:
                continue
            try:
                getattr(section, opt.dest)
            except cfg.NoSuchOptError:
                missing.append(f"[{group}] {opt.dest}")

    assert missing == []


def test_secret_options_are_secret():
    secret = {
        opt.dest for _, options in opts.list_opts() for opt in options
        if opt.secret
    }
    assert "password" in secret


def test_the_committed_sample_is_what_the_generator_writes(tmp_path):
    output = tmp_path / "sample.conf"
    subprocess.run(
        [sys.executable, "-m", "oslo_config.generator", "--config-file",
         str(GENERATOR), "--output-file", str(output)],
        check=True, cwd=ROOT, capture_output=True,
    )
    assert output.read_text() == SAMPLE.read_text(), (
        "etc/nova-migrate-flows/nova-migrate-flows.conf.sample is stale: "
        "run 'tox -e genconfig' (or oslo-config-generator --config-file "
        f"{GENERATOR.relative_to(ROOT)})"
    )


def test_tls_verification_is_on_unless_turned_off():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[], default_config_dirs=[])

    assert conf.nova.insecure is False
    assert conf.nova.cafile is None
