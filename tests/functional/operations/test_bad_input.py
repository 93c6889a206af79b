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
"""A catalogue of bad input across every command and the configuration.

Each case gives the documented exit code, one error line that names the
bad input (and says what to do), and leaves the cloud as it was: servers,
services and migrations are compared before and after.
"""

import argparse
import socket

import pytest
import yaml

from nova_migrate_flows.cli import moves
from tests.functional.operations import cli

pytestmark = pytest.mark.functional


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clouds_variant(sandbox, tmp_path, name, cloud, **auth):
    """A clouds.yaml holding the sandbox's ``cloud``, changed, as ``name``."""
    with open(sandbox.clouds_yaml) as handle:
        clouds = yaml.safe_load(handle)
    entry = clouds["clouds"][cloud]
    entry["auth"].update(auth)
    path = tmp_path / f"clouds-{name}.yaml"
    path.write_text(yaml.safe_dump({"clouds": {name: entry}}))
    return f"[nova]\ncloud = {name}\nclouds_yaml = {path}\n"


# (id, argv, extra configuration, exit code, text the error line contains)
CASES = [
    ("unknown-server", ["live-migrate", "no-such-server"], "", 2,
     "'no-such-server'"),
    ("malformed-server-id", ["live-migrate", "0b5a2f7e-0000-zzzz"], "", 2,
     "'0b5a2f7e-0000-zzzz'"),
    ("same-host", ["live-migrate", "{active}", "host1"], "", 2,
     "target host host1 is the server's own host"),
    ("unknown-target", ["live-migrate", "{active}", "host99"], "", 2,
     "target host host99"),
    ("server-not-active", ["live-migrate", "{stopped}"], "", 2,
     "SHUTOFF: only ACTIVE or PAUSED"),
    ("unknown-host", ["host-evacuate-live", "host99"], "", 2,
     "host host99: no nova-compute service"),
    ("onto-itself", ["host-evacuate-live", "host1", "--target-host",
                     "host1"], "", 2, "--target-host host1"),
    ("host-twice", ["host-evacuate-live", "host1", "host1"], "", 2,
     "host1 host1"),
    ("zero-concurrency", ["host-evacuate-live", "host1",
                          "--max-concurrent", "0"], "", 2,
     "--max-concurrent 0"),
    ("negative-concurrency", ["host-evacuate-live", "host1",
                              "--max-concurrent", "-2"], "", 2,
     "--max-concurrent -2"),
    ("unknown-target-host", ["host-servers-migrate", "host1",
                             "--target-host", "nowhere"], "", 2,
     "target host nowhere"),
    ("flavor-missing", ["resize", "{active}", "m9.huge"], "", 2,
     "flavor 'm9.huge'"),
    ("flavor-smaller-disk", ["resize", "{active}", "m1.tiny"], "", 2,
     "smaller root disk"),
    ("flavor-unchanged", ["resize", "{active}", "m1.small"], "", 2,
     "already has flavor m1.small"),
    ("evacuate-a-live-host", ["host-evacuate", "host1"], "", 2,
     "compute service on host1 is up"),
    ("unknown-kind-of-move", ["move", "--kind", "teleport", "{active}"], "",
     2, "teleport"),
    ("malformed-migration-id", ["migration-abort", "{active}", "abc"], "",
     2, "MIGRATION 'abc'"),
    ("unknown-migration", ["migration-show", "{active}", "987654"], "", 2,
     "MIGRATION 987654"),
    ("unknown-run", ["flows", "show", "0b5a2f7e-0000-4000-8000-0000000000"],
     "", 2, "no such run"),
    ("resume-unknown-run", ["resume", "0b5a2f7e-0000-4000-8000-000000000"],
     "", 2, "no such run"),
    ("misspelt-task", ["live-migrate", "{active}"],
     "[migration]\npreflight_tasks = server-state,sorage\n", 2, "'sorage'"),
    ("task-of-wrong-kind", ["live-migrate", "{active}"],
     "[migration]\nverify_tasks = storage\n", 2,
     "'storage' is a preflight task"),
    ("plugin-fails-to-import", ["live-migrate", "{active}"],
     "[migration]\nverify_tasks = host-changed,example-broken\n", 2,
     "'example-broken' failed to load"),
    ("timeout-out-of-range", ["live-migrate", "{active}"],
     "[migration]\ncompletion_timeout_min = 0\n", 2,
     "[migration] completion_timeout_min"),
    ("unknown-option-value", ["live-migrate", "{active}"],
     "[migration]\ntimeout_action = explode\n", 2,
     "[migration] timeout_action"),
    ("negative-poll-interval", ["live-migrate", "{active}"],
     "[migration]\npoll_interval = -1\n", 2, "[migration] poll_interval"),
    ("unknown-cloud", ["live-migrate", "{active}"],
     "[nova]\ncloud = no-such-cloud\n", 2, "no-such-cloud"),
    ("bad-persistence-url", ["live-migrate", "{active}"],
     "[persistence]\nconnection = nosuchdb://x\n", 2,
     "[persistence] connection"),
    ("unreachable-jobboard", ["submit", "live-migrate", "{active}"],
     "[jobboard]\nredis_port = {closed}\n", 2, "jobboard"),
    ("unreachable-nova", ["live-migrate", "{active}"], "{unreachable}", 4,
     "cannot reach"),
    ("wrong-credentials", ["live-migrate", "{active}"], "{wrong_password}",
     4, "authentication failed"),
    ("non-admin-credentials", ["live-migrate", "{active}"],
     "[nova]\ncloud = sandbox-demo\n", 4, "admin"),
]


@pytest.mark.parametrize(("argv", "config", "code", "text"),
                         [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input(nmf, boot_servers, sdk, sandbox, tmp_path, example_plugin,
                   argv, config, code, text):
    (active,) = boot_servers("host1", flavor="m1.small")
    (stopped,) = boot_servers("host1", stopped=True)
    values = {
        "active": active["id"], "stopped": stopped["id"],
        "closed": str(closed_port()),
        "unreachable": clouds_variant(
            sandbox, tmp_path, "unreachable", "sandbox",
            auth_url=f"http://127.0.0.1:{closed_port()}/identity"),
        "wrong_password": clouds_variant(sandbox, tmp_path, "wrong",
                                         "sandbox",
                                         password="not-the-password"),
    }
    before = cli.snapshot(sdk)

    ran = nmf.configured(config.format(**values),
                         *[a.format(**values) for a in argv])

    assert ran.code == code, ran.err
    lines = [line for line in ran.err.splitlines() if line.strip()]
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("nova-migrate-flow: error: ")
    assert text in lines[0], lines[0]
    assert ran.out == ""
    assert cli.snapshot(sdk) == before


def test_every_operation_is_in_the_catalogue():
    """Each command that moves servers has bad input here (a new one
    fails this test until it has), and each case its own id."""
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    moves.add_parsers(commands)

    assert set(commands.choices) - {case[1][0] for case in CASES} == set()
    assert len({case[0] for case in CASES}) == len(CASES)
