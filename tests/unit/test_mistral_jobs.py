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
"""Asynchronous actions posted as jobs for the conductors (``[mistral]
detach_to = jobboard``), against the fake cloud, a fake Mistral API, a
fake jobboard and a directory persistence backend."""

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from mistral_lib.actions import context as mistral_context

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import connection
from nova_migrate_flows.engine import jobboard, persistence, records
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.mistral import actions, detached, jobs, operation
from nova_migrate_flows.mistral import client as client_mod
from tests.unit import test_mistral_async as fakes

JOBBOARD_CONF = fakes.MISTRAL_CONF + "detach_to = jobboard\n"

#: The action context of a task of a workflow (a pytest fixture).
context = fakes.context


class FakeJob:
    def __init__(self, name: str, book: Any, details: dict[str, Any]):
        self.uuid = f"job-{name}"
        self.name, self.book, self.details = name, book, details


class FakeBoard:
    """A jobboard that keeps what was posted."""

    def __init__(self) -> None:
        self.jobs: list[FakeJob] = []

    def post(self, name: str, book: Any, details: dict[str, Any]) -> FakeJob:
        self.jobs.append(FakeJob(name, book, details))
        return self.jobs[-1]


@pytest.fixture
def board(monkeypatch) -> FakeBoard:
    fake = FakeBoard()

    @contextlib.contextmanager
    def connected(conf: Any, backend: Any) -> Iterator[FakeBoard]:
        yield fake

    monkeypatch.setattr(jobboard, "connected", connected)
    return fake


@pytest.fixture
def fake_cloud(cloud, monkeypatch):
    monkeypatch.setattr(connection, "compute_from_conf", lambda conf: cloud)
    return cloud


@pytest.fixture
def mistral(monkeypatch) -> fakes.FakeMistral:
    fake = fakes.FakeMistral()
    monkeypatch.setattr(client_mod, "from_conf", lambda conf: fake)
    return fake


@pytest.fixture
def conf(tmp_path):
    return operation.load_conf([fakes.write_config(tmp_path,
                                                   JOBBOARD_CONF)], None)


@pytest.fixture
def backend(conf):
    backend = persistence.backend_from_conf(conf)
    yield backend
    backend.close()


def post(conf: Any, board: FakeBoard, **given: Any) -> tuple[str, str]:
    """Post a live evacuation: the job's run and the operation's run."""
    job = jobs.post(conf, request_mod.Operation.HOST_EVACUATE_LIVE,
                    dict({"hosts": ["host1"]}, **given), fakes.EXECUTION)
    return board.jobs[-1].book.uuid, job["run_id"]


#: ``[jobboard]`` set, ``[mistral] detach_to`` left at ``auto``.
AUTO_CONF = fakes.MISTRAL_CONF + "[jobboard]\nredis_host = 127.0.0.2\n"


@pytest.mark.parametrize("text", [JOBBOARD_CONF, AUTO_CONF],
                         ids=["jobboard", "auto-with-jobboard"])
def test_a_detached_action_posts_one_job_and_starts_no_process(
        fake_cloud, mistral, board, tmp_path, monkeypatch, context, text):
    spawned: list[Any] = []
    monkeypatch.setattr(detached, "spawn", spawned.append)
    config = fakes.write_config(tmp_path, text)
    action = actions.HostEvacuateLiveAction(
        "host1", max_concurrent=2, detach=True, config_file=config)

    assert action.run(context) is None

    assert spawned == []
    (job,) = board.jobs
    assert job.name == jobs.JOB
    conf = operation.load_conf([config], None)
    book = records.Records(persistence.backend_from_conf(conf)).get(
        job.book.uuid)
    assert book.meta["state"] == constants.RunState.POSTED
    assert book.meta["mistral"] == {"action_execution_id": "ac-1",
                                    "task_execution_id": "task-1",
                                    "workflow_execution_id": "wf-1"}
    assert book.meta["request"]["hosts"] == ["host1"]
    assert book.meta["request"]["max_concurrent"] == 2
    assert set(book.meta["steps"]) == {jobs.STEP}
    assert book.meta["jobs"] == [{"job_id": job.uuid, "name": jobs.JOB,
                                  "flow_uuid": job.details["flow_uuid"]}]
    (detail,) = book
    assert detail.uuid == job.details["flow_uuid"]
    assert detail.meta["store"]["run_id"] == book.uuid
    assert fake_cloud.writes == []


@pytest.mark.parametrize("text", [
    fakes.MISTRAL_CONF,
    AUTO_CONF.replace("[mistral]", "[mistral]\ndetach_to = process", 1),
], ids=["auto-without-jobboard", "process"])
def test_a_detached_action_runs_in_a_process_unless_told_otherwise(
        fake_cloud, mistral, board, tmp_path, monkeypatch, context, text):
    spawned: list[Any] = []
    monkeypatch.setattr(detached, "spawn",
                        lambda spec: spawned.append(spec) or 4242)
    action = actions.HostEvacuateLiveAction(
        "host1", detach=True,
        config_file=fakes.write_config(tmp_path, text))

    assert action.run(context) is None

    assert board.jobs == []
    assert [spec.operation for spec in spawned] == ["host-evacuate-live"]


def test_bad_input_is_refused_before_anything_is_posted(
        fake_cloud, mistral, board, tmp_path):
    action = actions.LiveMigrateAction(
        "vm", block_migration="sometimes", detach=True,
        config_file=fakes.write_config(tmp_path, JOBBOARD_CONF))
    context = mistral_context.ActionContext(
        security_ctx=mistral_context.SecurityContext(project_id="admin"),
        execution_ctx=mistral_context.ExecutionContext(
            action_execution_id="ac-1"))

    result = action.run(context)

    assert result.error["exit_code"] == 2
    assert board.jobs == []


def test_the_job_flow_needs_the_runtime_and_the_job_s_run():
    flow = jobs.job_flow()

    assert flow.name == jobs.JOB
    assert set(flow.requires) == {constants.RUNTIME, "run_id"}


def test_the_job_runs_the_recorded_run_and_reports_its_result(
        conf, fake_cloud, mistral, board, backend):
    servers = [fake_cloud.add_server("host1") for _ in range(2)]
    job_run, run_id = post(conf, board)

    assert jobs.run_job(conf, fake_cloud, backend, job_run) == "SUCCESS"

    ((execution_id, state, output),) = mistral.reports
    assert (execution_id, state) == ("ac-1", "SUCCESS")
    assert output["run_id"] == run_id
    assert {r["server"]: r["status"] for r in output["results"]} == {
        s.id: "migrated" for s in servers}
    for server in servers:
        assert fake_cloud.get_server(server.id).host != "host1"
    store = records.Records(backend)
    assert store.get(run_id).meta["state"] == constants.RunState.FINISHED
    book = store.get(job_run)
    assert book.meta["state"] == constants.RunState.FINISHED
    assert book.meta["summary"] == {"migrated": 2, "failed": 0,
                                    "skipped": 0}
    assert book.meta["reported"] is True


def test_a_conductor_taking_the_job_over_resumes_the_run(
        conf, fake_cloud, mistral, board, backend):
    """The first conductor died with the run interrupted: the second one
    resumes that run (no new one) and reports its end."""
    server = fake_cloud.add_server("host1")
    job_run, run_id = post(conf, board)
    first = runner_mod.Runner(conf, fake_cloud, backend=backend)
    first.stop(False, "conductor-a died")
    request = request_mod.MoveRequest.from_dict(
        records.Records(backend).get(job_run).meta["request"])
    assert first.run(request, run_id=run_id).interrupted
    assert fake_cloud.get_server(server.id).host == "host1"

    assert jobs.run_job(conf, fake_cloud, backend, job_run) == "SUCCESS"

    ((_, state, output),) = mistral.reports
    assert output["run_id"] == run_id
    (row,) = output["results"]
    assert (row["server"], row["status"]) == (server.id, "migrated")
    assert fake_cloud.get_server(server.id).host != "host1"
    assert [b.uuid for b in records.Records(backend).list()
            if b.uuid != job_run] == [run_id]


def test_a_run_that_ended_before_its_conductor_died_is_not_run_again(
        conf, fake_cloud, mistral, board, backend):
    server = fake_cloud.add_server("host1")
    job_run, run_id = post(conf, board)
    request = request_mod.MoveRequest.from_dict(
        records.Records(backend).get(job_run).meta["request"])
    runner_mod.Runner(conf, fake_cloud, backend=backend).run(
        request, run_id=run_id)
    writes = list(fake_cloud.writes)

    assert jobs.run_job(conf, fake_cloud, backend, job_run) == "SUCCESS"

    ((_, state, output),) = mistral.reports
    (row,) = output["results"]
    assert (row["server"], row["status"]) == (server.id, "migrated")
    assert fake_cloud.writes == writes


def test_a_recorded_result_is_only_reported_again(
        conf, fake_cloud, mistral, board, backend):
    """The first conductor recorded the result and died before Mistral
    had it: the second one reports it and moves nothing."""
    fake_cloud.add_server("host1")
    job_run, run_id = post(conf, board)
    mistral.report_errors = [RuntimeError("conductor-a killed")]
    with pytest.raises(RuntimeError):
        jobs.run_job(conf, fake_cloud, backend, job_run)
    writes = list(fake_cloud.writes)

    assert jobs.run_job(conf, fake_cloud, backend, job_run) == "SUCCESS"

    ((_, state, output),) = mistral.reports
    assert output["summary"]["migrated"] == 1
    assert fake_cloud.writes == writes
    assert "resumed_at" not in records.Records(backend).get(run_id).meta


def test_a_job_mistral_stopped_waiting_for_moves_nothing(
        conf, fake_cloud, mistral, board, backend):
    server = fake_cloud.add_server("host1")
    job_run, _ = post(conf, board)
    mistral.states["workflow"] = "CANCELLED"
    # Told before the run starts, not by the watch's first look.
    conf.set_override("poll_interval", 600, group="mistral")

    assert jobs.run_job(conf, fake_cloud, backend, job_run) == "ERROR"

    ((_, state, output),) = mistral.reports
    assert output["error"] == "the run was interrupted"
    (row,) = output["results"]
    assert (row["server"], row["status"]) == (server.id, "skipped")
    assert "interrupted by Mistral: workflow execution wf-1 is CANCELLED" \
        in row["reason"]
    assert fake_cloud.get_server(server.id).host == "host1"
    assert fake_cloud.services["host1"].status == "enabled"


def test_a_conductor_without_mistral_s_api_fails_the_job(
        conf, fake_cloud, board, backend, tmp_path):
    job_run, _ = post(conf, board)
    without = operation.load_conf([fakes.write_config(tmp_path)], None)

    with pytest.raises(exceptions.ConfigurationError):
        jobs.run_job(without, fake_cloud, backend, job_run)

    assert fake_cloud.writes == []


def test_a_roll_runs_under_the_recorded_run_id(
        conf, fake_cloud, mistral, board, backend):
    fake_cloud.add_server("host1")
    job = jobs.post(conf, request_mod.Operation.MAINTENANCE_ROLL,
                    {"hosts": ["host1"], "hook": "true"}, fakes.EXECUTION)

    assert jobs.run_job(conf, fake_cloud, backend,
                        board.jobs[-1].book.uuid) == "SUCCESS"

    ((_, state, output),) = mistral.reports
    assert output["run_id"] == job["run_id"]
    assert output["operation"] == "host-maintenance-roll"
    (host,) = output["hosts"]
    assert (host["host"], host["done"]) == ("host1", True)
