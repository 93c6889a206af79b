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
"""No secret ever leaves the tool: not the passwords, the application
credential's secret, nor any token it was issued.

The tool runs with ``--debug``, a log file and every library it uses
logging at DEBUG too (what an operator turns on to find a problem): a live
migration, a host evacuation, a migration that fails, a run with a wrong
password, and a ``submit`` to a Redis jobboard. It reaches the sandbox
through a fault proxy that injects nothing and keeps every token the
sandbox's Keystone issued to it; the sandbox's own log proves that no
other token was issued while the tool ran. Then every place the tool
writes to is searched: its standard output (JSON) and error (logs and
error messages), the log file, every table of the persistence database
(and its raw files), and every key of the jobboard in Redis.

The options that hold secrets must be ``secret=True``, and TLS must be
verified unless configured off.
"""

import json
import logging
import os
import pathlib
import re
import sqlite3
import urllib.parse
import uuid
from typing import Any

import pytest
import redis
import yaml
from oslo_config import cfg

from nova_migrate_flows import opts
from nova_migrate_flows.compute import connection
from nova_migrate_flows.engine import persistence
from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.sandbox import constants, identity
from tests import external
from tests.functional import faultproxy, resilience
from tests.functional.operations import cli

pytestmark = pytest.mark.functional

#: Every library logging at DEBUG, on top of the tool's ``--debug``.
DEBUG_LEVELS = ("keystoneauth=DEBUG,openstack=DEBUG,urllib3=DEBUG,"
                "requests=DEBUG,taskflow=DEBUG,stevedore=DEBUG,redis=DEBUG")
ISSUED = re.compile(r"Issued token (\w+) to ")
#: Option names that say the option holds a secret.
SECRET_NAMES = re.compile(
    r"password|secret|token|credential|connection$|transport_url$")


@pytest.fixture
def redis_url() -> str:
    # The secrets test searches the Redis jobboard too.
    return external.address("redis")


@pytest.fixture
def board(redis_url: str) -> Any:
    """A jobboard name of this test; its keys are deleted afterwards."""
    name = f"nmf-secrets-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    yield name, client
    keys = list(client.scan_iter(match=f"*{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def restore(sdk: Any, sandbox_client: Any) -> Any:
    yield
    resilience.restore_services(sdk, sandbox_client)


@pytest.fixture
def logging_restored() -> Any:
    """Put back the levels the runs gave the libraries' loggers (and the
    root logger's handlers, which write to this test's captured streams)
    before the servers are deleted."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger
              in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


def jobboard_config(url: str, name: str) -> str:
    parsed = urllib.parse.urlparse(url)
    return (f"[jobboard]\nbackend = redis\nredis_host = {parsed.hostname}\n"
            f"redis_port = {parsed.port or 6379}\n"
            f"redis_db = {int((parsed.path or '/0').strip('/') or 0)}\n"
            f"name = {name}\n")


def known_secrets(sandbox: Any) -> dict[str, str]:
    """The sandbox's passwords and secrets, from its sandbox.json."""
    with open(os.path.join(sandbox.state_dir, "sandbox.json"),
              encoding="utf-8") as stream:
        runtime = json.load(stream)
    return {
        "admin password": runtime["users"][constants.ADMIN_USER]["password"],
        "demo password": runtime["users"][constants.DEMO_USER]["password"],
        "application credential secret":
            runtime["application_credential"]["secret"],
        "control secret": runtime["control_secret"],
    }


def database_dump(path: str) -> str:
    """Every row of every table of the SQLite database, as text."""
    rows = []
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                rows.append(f"{table}: " + " | ".join(
                    value.decode(errors="replace")
                    if isinstance(value, bytes) else str(value)
                    for value in row))
    assert tables, f"no table in {path}"
    return "\n".join(rows)


def raw_files(directory: str) -> str:
    """The bytes of every file under ``directory`` (WAL included)."""
    contents = []
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as stream:
                contents.append(stream.read().decode("latin-1"))
    return "\n".join(contents)


def redis_dump(client: redis.Redis, name: str) -> str:
    """Every key of the board and everything in it, as text."""
    parts = []
    for key in client.scan_iter(match=f"*{name}*"):
        kind = client.type(key).decode()
        value: Any = {
            "string": lambda k: client.get(k),
            "hash": lambda k: client.hgetall(k),
            "list": lambda k: client.lrange(k, 0, -1),
            "set": lambda k: client.smembers(k),
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        }[kind](key)
        parts.append(f"{key!r} ({kind}): {value!r}")
    return "\n".join(parts)


class Watched:
    """Runs of the tool, and the tokens the sandbox issued meanwhile."""

    def __init__(self, tool: resilience.Tool, log_file: str,
                 sandbox_log: str) -> None:
        self.tool = tool
        self.log_file = log_file
        self.sandbox_log = sandbox_log
        self.runs: list[cli.Ran] = []
        #: Digests of the tokens the sandbox issued during the runs.
        self.issued: set[str] = set()

    def __call__(self, *argv: str, config: str = "") -> cli.Ran:
        start = os.path.getsize(self.sandbox_log)
        ran = self.tool("--debug", "--log-file", self.log_file, *argv,
                        config=f"[DEFAULT]\ndefault_log_levels = "
                        f"{DEBUG_LEVELS}\n{config}")
        with open(self.sandbox_log, encoding="utf-8",
                  errors="replace") as stream:
            stream.seek(start)
            self.issued.update(ISSUED.findall(stream.read()))
        self.runs.append(ran)
        return ran


@pytest.mark.redis
def test_no_secret_leaks(sandbox, sdk, boot_servers, board, redis_url,
                         logging_restored, capsys, tmp_path):
    name, client = board
    (single,) = boot_servers("host1")
    pair = boot_servers("host2", count=2)
    (failing,) = boot_servers("host1", metadata=cli.server_metadata(
        result=constants.RESULT_FAIL))
    boot_servers("host3")
    secrets = known_secrets(sandbox)
    wrong = "wrong-" + uuid.uuid4().hex
    secrets["wrong password"] = wrong
    log_file = str(tmp_path / "nova-migrate-flows.log")

    with faultproxy.FaultProxy(sandbox.port) as proxy:
        tool = resilience.Tool(capsys, sandbox, tmp_path / "good", proxy)
        run = Watched(tool, log_file, sandbox.log_file)
        ran = run("live-migrate", single["id"], "--format", "json")
        assert ran.code == 0, ran.err
        ran = run("host-evacuate-live", "host2", "--format", "json")
        assert ran.code == 0, ran.err
        assert {r["server"] for r in ran.results} == {s["id"] for s in pair}
        ran = run("live-migrate", failing["id"], "--format", "json")
        assert ran.code == ExitCode.SERVERS_FAILED, ran.err
        assert ran.result_of(failing["id"])["status"] == "failed"
        ran = run("submit", "host-evacuate-live", "host3", "--format",
                  "json", config=jobboard_config(redis_url, name))
        assert ran.code == 0, ran.err
        (job,) = ran.json["jobs"]

        bad = Watched(resilience.Tool(capsys, sandbox, tmp_path / "bad"),
                      log_file, sandbox.log_file)
        with open(tool.clouds_yaml, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
        document["clouds"][constants.CLOUD_ADMIN]["auth"]["password"] = wrong
        bad.tool.clouds_yaml = str(tmp_path / "bad" / "clouds.yaml")
        descriptor = os.open(bad.tool.clouds_yaml,
                             os.O_WRONLY | os.O_CREAT, 0o600)
        with open(descriptor, "w", encoding="utf-8") as stream:
            yaml.safe_dump(document, stream)
        ran = bad("live-migrate", single["id"], "--format", "json")
        assert ran.code == ExitCode.NOVA_UNAVAILABLE, ran.err
        assert "authentication failed" in ran.error_line()

    tokens = set(proxy.issued_tokens)
    # Every token the sandbox issued while the tool ran went to the tool,
    # through the proxy: the search below looks for all of them.
    assert run.issued | bad.issued == {
        identity.token_digest(token) for token in tokens}
    assert len(tokens) >= 4
    secrets.update({f"token {identity.token_digest(t)}": t for t in tokens})

    state_dir = str(tool.state_dir)
    database = os.path.join(state_dir, persistence.DB_NAME)
    places = {
        "standard output and error": "\n".join(
            ran.out + ran.err for ran in run.runs + bad.runs),
        "log file": pathlib.Path(log_file).read_text(encoding="utf-8"),
        "persistence database": database_dump(database),
        "persistence files": raw_files(state_dir),
        "persistence files of the refused run": raw_files(
            str(bad.tool.state_dir)),
        "jobboard": redis_dump(client, name),
    }
    # The places hold what the tool did, so the search is not vacuous.
    run_ids = [r.json["run_id"] for r in run.runs]
    assert all(run_id in places["persistence database"]
               for run_id in run_ids)
    assert job["job_id"] in places["jobboard"]
    assert "REQ: curl" in places["log file"]
    leaks = [f"{secret} in the {place}"
             for place, text in places.items()
             for secret, value in secrets.items() if value in text]
    assert leaks == []


def configured(tmp_path: Any, text: str) -> cfg.ConfigOpts:
    """The tool's options, read from a file holding ``text``."""
    path = tmp_path / f"{uuid.uuid4().hex}.conf"
    path.write_text(text)
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project="nova-migrate-flows-tests",
         default_config_files=[str(path)], default_config_dirs=[])
    return conf


def test_every_option_holding_a_secret_is_secret(tmp_path):
    holding = {(group, opt.dest): opt for group, options in opts.list_opts()
               for opt in options if SECRET_NAMES.search(opt.dest)}
    conf = configured(tmp_path, (
        "[nova]\npassword = nova-s3cret\n"
        "[persistence]\nconnection = postgresql://nmf:db-s3cret@db/nmf\n"
        "[jobboard]\nredis_password = redis-s3cret\n"
        "[watch]\ntransport_url = rabbit://nmf:bus-s3cret@rabbit01:5672/\n"
        "[mistral]\npassword = mistral-s3cret\n"))
    logged: list[str] = []
    logger = logging.getLogger("test-secrets")
    logger.addHandler(ListHandler(logged))
    logger.setLevel(logging.DEBUG)

    conf.log_opt_values(logger, logging.DEBUG)

    assert set(holding) == {("nova", "password"),
                            ("persistence", "connection"),
                            ("jobboard", "redis_password"),
                            ("watch", "transport_url"),
                            ("mistral", "password")}
    assert all(opt.secret for opt in holding.values())
    text = "\n".join(logged)
    for option in ("persistence.connection", "jobboard.redis_password",
                   "watch.transport_url"):
        assert re.search(rf"{option}\s+= \*\*\*\*$", text, re.M), option
    assert "s3cret" not in text


class ListHandler(logging.Handler):
    """Keeps the messages logged."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__()
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


KEYSTONE = ("[nova]\nauth_type = password\n"
            "auth_url = https://keystone.example:5000/v3\n"
            "username = nmf\npassword = s3cret\nproject_name = admin\n"
            "user_domain_name = Default\nproject_domain_name = Default\n")


@pytest.mark.parametrize(("text", "verify"), [
    (KEYSTONE, True),
    (KEYSTONE + "insecure = true\n", False),
    (KEYSTONE + "cafile = /etc/ssl/cloud-ca.pem\n",
     "/etc/ssl/cloud-ca.pem"),
], ids=["options", "options-insecure", "options-cafile"])
def test_tls_is_verified_unless_configured_off(tmp_path, text, verify):
    conf = configured(tmp_path, text)

    session = connection.connect(conf).session

    assert conf.nova.insecure is (verify is False)
    assert session.verify == verify


@pytest.mark.parametrize(("extra", "verify"), [
    ({}, True),
    ({"verify": False}, False),
    ({"cacert": "/etc/ssl/cloud-ca.pem"}, "/etc/ssl/cloud-ca.pem"),
], ids=["clouds-yaml", "clouds-yaml-verify-false", "clouds-yaml-cacert"])
def test_tls_is_verified_unless_clouds_yaml_says_not(tmp_path, extra,
                                                     verify):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"cloud": dict(
        auth_type="password", auth={
            "auth_url": "https://keystone.example:5000/v3",
            "username": "nmf", "password": "s3cret",
            "project_name": "admin", "user_domain_name": "Default",
            "project_domain_name": "Default"}, **extra)}}))
    conf = configured(tmp_path, f"[nova]\ncloud = cloud\n"
                      f"clouds_yaml = {clouds}\n")

    session = connection.connect(conf).session

    assert session.verify == verify
