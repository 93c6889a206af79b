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
"""The command line: exit codes, one-line errors, clean JSON."""

import json

import pytest

from nova_migrate_flows.cli import main as cli
from nova_migrate_flows.compute import connection, fake


@pytest.fixture
def cloud(monkeypatch):
    """The in-memory cloud, as the command line's Nova."""
    cloud = fake.FakeCompute(3, steps=1)
    monkeypatch.setattr(connection, "compute_from_conf", lambda conf: cloud)
    return cloud


@pytest.fixture
def config(tmp_path):
    """Write a configuration file; returns its path."""

    def write(text="[nova]\ncloud = test\n"):
        path = tmp_path / "nmf.conf"
        path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
                        "[migration]\npoll_interval = 0.02\n"
                        "poll_interval_min = 0.01\n" + text)
        return str(path)

    return write


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("nova-migrate-flow: error: ")
    return lines[0]


def test_help_documents_the_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")

    assert code == 0
    assert "Exit codes: 0 success; 1" in " ".join(out.split())


def test_list_tasks_as_json(capsys):
    code, out, _ = run(capsys, "list-tasks", "--format", "json")

    data = json.loads(out)
    assert code == 0
    by_name = {t["name"]: t for t in data["tasks"]}
    assert by_name["server-state"]["kind"] == "preflight"
    assert by_name["server-state"]["configured"] is True
    assert by_name["host-changed"]["kind"] == "verify"
    assert (by_name["run-command"]["kind"],
            by_name["run-command"]["configured"]) == ("hook", True)
    assert data["configured"]["hook"] == ["run-command"]


def test_a_missing_config_file_is_bad_input(capsys, tmp_path):
    code, _, err = run(capsys, "--config-file", str(tmp_path / "no.conf"),
                       "list-tasks")

    assert code == 2
    assert "no.conf" in one_error_line(err)


def test_an_unparsable_config_file_is_bad_input(capsys, tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[migration\ntimeout_action = abort\n")

    code, _, err = run(capsys, "--config-file", str(path), "list-tasks")

    assert code == 2
    assert "cannot be parsed" in one_error_line(err)


def test_a_bad_option_value_is_bad_input(capsys, config):
    code, _, err = run(capsys, "--config-file",
                       config("[migration]\ntimeout_action = explode\n"),
                       "list-tasks")

    assert code == 2
    line = one_error_line(err)
    assert "[migration] timeout_action" in line
    assert "explode" in line


def test_no_nova_configured_is_bad_input(capsys, tmp_path):
    path = tmp_path / "empty.conf"
    path.write_text("")

    code, _, err = run(capsys, "--config-file", str(path), "live-migrate",
                       "x")

    assert code == 2
    assert "[nova]" in one_error_line(err)


def test_live_migrate_json_is_alone_on_stdout(capsys, cloud, config):
    server = cloud.add_server("host1", name="web")

    code, out, _ = run(capsys, "--config-file", config(), "live-migrate",
                       "web", "--format", "json")

    assert code == 0
    data = json.loads(out)
    (result,) = data["results"]
    assert result["server"] == server.id
    assert result["status"] == "migrated"
    assert result["destination"] == cloud.servers[server.id].host


def test_live_migrate_table_has_a_summary(capsys, cloud, config):
    cloud.add_server("host1", name="web")

    code, out, _ = run(capsys, "--config-file", config(), "live-migrate",
                       "web", "host3")

    assert code == 0
    assert "| web " in out
    assert "1 migrated, 0 failed, 0 skipped" in out


def test_a_failed_server_exits_1(capsys, cloud, config):
    server = cloud.add_server("host1", name="web")
    cloud.behaviours[server.id] = fake.Behaviour(live="fail")

    code, out, _ = run(capsys, "--config-file", config(), "live-migrate",
                       "web", "--format", "json")

    assert code == 1
    assert json.loads(out)["results"][0]["status"] == "failed"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["live-migrate", "no-such-server"],
         "server 'no-such-server': no server has this name or id"),
        (["live-migrate", "web", "host1"],
         "target host host1 is the server's own host"),
        (["live-migrate", "web", "nohost"],
         "target host nohost: no nova-compute service there"),
        (["host-evacuate-live", "nohost"],
         "host nohost: no nova-compute service there"),
        (["host-evacuate-live", "host1", "--target-host", "host1"],
         "--target-host host1: it is one of the hosts being emptied"),
        (["host-evacuate-live", "host1", "--max-concurrent", "0"],
         "--max-concurrent 0: must be 1 or more"),
        (["host-evacuate-live", "host1", "--max-concurrent", "-3"],
         "--max-concurrent -3: must be 1 or more"),
        (["resize", "web", "m9.nothing"],
         "flavor 'm9.nothing': no such flavor"),
        (["migration-abort", "web", "abc"],
         "MIGRATION 'abc': not a migration id"),
        (["migration-show", "web", "99"], "MIGRATION 99: server web ("),
    ],
    ids=["unknown-server", "same-host", "unknown-target", "unknown-host",
         "onto-itself", "zero-concurrency", "negative-concurrency",
         "unknown-flavor", "malformed-migration", "unknown-migration"],
)
def test_bad_input_exits_2_and_changes_nothing(capsys, cloud, config, argv,
                                               says):
    cloud.add_server("host1", name="web")

    code, out, err = run(capsys, "--config-file", config(), *argv)

    assert code == 2
    assert says in one_error_line(err)
    assert out == ""
    assert cloud.writes == []


def test_a_misspelt_task_in_the_config_exits_2(capsys, cloud, config):
    cloud.add_server("host1", name="web")

    code, _, err = run(capsys, "--config-file", config(
        "[migration]\nverify_tasks = host-changed,hots-changed\n"),
        "live-migrate", "web")

    assert code == 2
    line = one_error_line(err)
    assert "'hots-changed'" in line and "host-changed" in line
    assert cloud.writes == []


def test_dry_run_prints_the_plan(capsys, cloud, config):
    cloud.add_server("host1", name="web")
    cloud.add_server("host1", name="paused", status="SUSPENDED")

    code, out, _ = run(capsys, "--config-file", config(),
                       "host-evacuate-live", "host1", "--dry-run")

    assert code == 0
    assert "Dry run: 1 server(s) would move, 1 skipped" in out
    assert "SUSPENDED" in out
    assert cloud.writes == []


def test_migration_list_as_json(capsys, cloud, config):
    server = cloud.add_server("host1", name="web")
    cloud.live_migrate(server.id, "host2", "auto")

    code, out, _ = run(capsys, "--config-file", config(), "migration-list",
                       "--server", "web", "--format", "json")

    assert code == 0
    (migration,) = json.loads(out)["migrations"]
    assert migration["instance_uuid"] == server.id
    assert migration["type"] == "live-migration"
    assert migration["source_compute"] == "host1"


def test_migration_abort(capsys, cloud, config):
    server = cloud.add_server("host1", name="web")
    cloud.behaviours[server.id] = fake.Behaviour(live="hang")
    cloud.live_migrate(server.id, "host2", "auto")
    cloud.advance(3)

    code, out, _ = run(capsys, "--config-file", config(), "migration-abort",
                       "web", "1")

    assert code == 0
    assert out == (f"Live migration 1 of web ({server.id}): abort accepted "
                   f"by Nova; 'nova-migrate-flow migration-show {server.id} "
                   "1' shows when it ends\n")
    assert cloud.instance_actions(server.id)[0].action == (
        "live_migration_cancel")
    cloud.advance()
    assert cloud.migrations[0].record.status == "cancelled"


def test_runs_are_recorded_and_listed(capsys, cloud, config):
    cloud.add_server("host1", name="web")
    path = config()
    code, out, _ = run(capsys, "--config-file", path, "host-evacuate-live",
                       "host1", "--format", "json")
    run_id = json.loads(out)["run_id"]

    code, out, _ = run(capsys, "--config-file", path, "flows", "list",
                       "--format", "json")

    assert code == 0
    (listed,) = json.loads(out)["runs"]
    assert listed["run_id"] == run_id
    assert listed["state"] == "finished"
    assert listed["summary"] == {"migrated": 1, "failed": 0, "skipped": 0}

    code, out, _ = run(capsys, "--config-file", path, "flows", "show",
                       run_id, "--format", "json")

    view = json.loads(out)
    assert [s["status"] for s in view["servers"]] == ["migrated"]
    assert {f["state"] for f in view["flows"]} == {"SUCCESS"}


def test_runs_recorded_in_a_directory_are_listed(capsys, cloud, config,
                                                 tmp_path):
    cloud.add_server("host1", name="web")
    path = config(f"[nova]\ncloud = test\n[persistence]\n"
                  f"connection = dir://{tmp_path / 'runs'}\n")
    code, out, _ = run(capsys, "--config-file", path, "live-migrate", "web",
                       "--format", "json")
    run_id = json.loads(out)["run_id"]

    code, out, _ = run(capsys, "--config-file", path, "flows", "list",
                       "--format", "json")

    assert code == 0
    (listed,) = json.loads(out)["runs"]
    assert (listed["run_id"], listed["state"]) == (run_id, "finished")
    assert (tmp_path / "runs" / "books" / run_id).is_dir()
    assert not (tmp_path / "state" / "nova-migrate-flows.sqlite").exists()

    code, out, _ = run(capsys, "--config-file", path, "flows", "show",
                       run_id, "--format", "json")

    assert code == 0
    assert [s["status"] for s in json.loads(out)["servers"]] == ["migrated"]


def test_an_unknown_persistence_scheme_exits_2_in_one_line(capsys, cloud,
                                                           config):
    cloud.add_server("host1", name="web")
    path = config("[nova]\ncloud = test\n[persistence]\n"
                  "connection = redis://:s3cret@127.0.0.1:6379\n")

    code, _, err = run(capsys, "--config-file", path, "live-migrate", "web")

    assert code == 2
    assert one_error_line(err) == (
        "nova-migrate-flow: error: [persistence] connection: unknown scheme "
        "'redis'; accepted schemes: dir, file, memory, mysql, postgresql, "
        "sqlite, zookeeper")
    assert cloud.migrations == []


def test_resume_of_a_finished_run_is_refused(capsys, cloud, config):
    cloud.add_server("host1", name="web")
    path = config()
    _, out, _ = run(capsys, "--config-file", path, "live-migrate", "web",
                    "--format", "json")

    code, _, err = run(capsys, "--config-file", path, "resume",
                       json.loads(out)["run_id"])

    assert code == 2
    assert "nothing to resume" in one_error_line(err)


def test_flows_show_of_an_unknown_run_is_bad_input(capsys, config):
    code, _, err = run(capsys, "--config-file", config(), "flows", "show",
                       "0b5a2f7e-0000-4000-8000-000000000000")

    assert code == 2
    assert "no such run" in one_error_line(err)
