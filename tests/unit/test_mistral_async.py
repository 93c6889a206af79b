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
"""Detached (asynchronous) actions, reporting to Mistral, and Mistral's
timeout or cancel stopping an operation, against the fake cloud and a fake
Mistral API."""

import http.server
import io
import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from keystoneauth1 import exceptions as ks_exc
from mistral_lib import actions as mistral_actions
from mistral_lib.actions import context as mistral_context

from nova_migrate_flows.compute import connection
from nova_migrate_flows.mistral import actions, detached, operation
from nova_migrate_flows.mistral import client as client_mod

EXECUTION = operation.Execution("ac-1", "task-1", "wf-1")


class FakeMistral:
    """Mistral's API: each execution RUNNING unless ``states`` says
    otherwise (a state, or a function giving it); reports recorded."""

    def __init__(self, **states: str | Callable[[], str]) -> None:
        self.states = states
        self.reports: list[tuple[str, str, Any]] = []
        self.report_errors: list[Exception] = []

    def _state(self, kind: str) -> dict[str, Any]:
        state = self.states.get(kind, "RUNNING")
        return {"state": state() if callable(state) else state}

    def action_execution(self, execution_id: str) -> dict[str, Any]:
        return self._state("action")

    def task_execution(self, execution_id: str) -> dict[str, Any]:
        return self._state("task")

    def workflow_execution(self, execution_id: str) -> dict[str, Any]:
        return self._state("workflow")

    def report(self, execution_id: str, state: str, output: Any) -> None:
        if self.report_errors:
            raise self.report_errors.pop(0)
        self.reports.append((execution_id, state, output))


@pytest.fixture
def context():
    return mistral_context.ActionContext(
        security_ctx=mistral_context.SecurityContext(project_id="admin"),
        execution_ctx=mistral_context.ExecutionContext(
            workflow_execution_id="wf-1", task_execution_id="task-1",
            action_execution_id="ac-1", workflow_name="drain"))


def write_config(tmp_path: Any, text: str = "") -> str:
    path = tmp_path / "nmf.conf"
    path.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
        "[migration]\npoll_interval = 0.02\npoll_interval_min = 0.01\n"
        + text)
    return str(path)


MISTRAL_CONF = ("[mistral]\nendpoint_override = http://mistral.invalid/v2\n"
                "poll_interval = 0.1\n")


@pytest.fixture
def fake_cloud(cloud, monkeypatch):
    monkeypatch.setattr(connection, "compute_from_conf", lambda conf: cloud)
    return cloud


@pytest.fixture
def mistral(monkeypatch) -> FakeMistral:
    fake = FakeMistral()
    monkeypatch.setattr(client_mod, "from_conf", lambda conf: fake)
    return fake


@pytest.fixture
def spawned(monkeypatch) -> list[detached.Spec]:
    specs: list[detached.Spec] = []

    def spawn(spec: detached.Spec) -> int:
        specs.append(spec)
        return 4242

    monkeypatch.setattr(detached, "spawn", spawn)
    return specs


def test_a_detached_action_is_asynchronous_and_starts_a_process(
        fake_cloud, mistral, spawned, tmp_path, context):
    config = write_config(tmp_path, MISTRAL_CONF)
    action = actions.HostEvacuateLiveAction(
        "host1", max_concurrent=2, detach=True, config_file=config)

    assert action.is_sync() is False
    assert action.run(context) is None
    (spec,) = spawned
    assert spec.operation == "host-evacuate-live"
    assert spec.given["hosts"] == ["host1"]
    assert spec.given["max_concurrent"] == 2
    assert (spec.config_file, spec.execution) == ([config], EXECUTION)
    assert detached.Spec.from_json(spec.to_json()) == spec
    assert fake_cloud.writes == []


@pytest.mark.parametrize(("text", "message"), [
    ("", "[mistral]: Mistral's API is not configured"),
    ("[mistral]\nauth_type = password\n", "[mistral]: "),
], ids=["nothing", "no-credentials"])
def test_a_detached_action_without_mistrals_api_is_refused(
        fake_cloud, spawned, tmp_path, context, text, message):
    action = actions.HostEvacuateLiveAction(
        "host1", detach=True, config_file=write_config(tmp_path, text))

    result = action.run(context)

    assert result.error["exit_code"] == 2
    assert result.error["error"].startswith(message)
    assert spawned == []


def test_a_synchronous_action_is_stopped_when_its_task_times_out(
        fake_cloud, mistral, tmp_path, context):
    """The task goes to ERROR once the migrations are in flight: they are
    aborted ([drain] interrupt_action = abort), the service restored."""
    servers = [fake_cloud.add_server("host1") for _ in range(2)]
    for server in servers:
        fake_cloud.behaviours[server.id].live = "hang"
    mistral.states["task"] = lambda: (
        "ERROR" if fake_cloud.migrations else "RUNNING")
    action = actions.HostEvacuateLiveAction(
        "host1", config_file=write_config(tmp_path, MISTRAL_CONF))

    result = action.run(context)

    assert result.is_error()
    assert result.error["interrupted"] is True
    assert result.error["error"] == "the run was interrupted"
    for row in result.error["results"]:
        assert row["status"] == "skipped"
        assert "interrupted by Mistral: task task-1 is ERROR" in row["reason"]
    for server in servers:
        assert fake_cloud.get_server(server.id).host == "host1"
    assert {m.record.status for m in fake_cloud.migrations} == {"cancelled"}
    assert fake_cloud.services["host1"].status == "enabled"


def test_a_stop_before_the_run_starts_is_not_lost(fake_cloud, mistral,
                                                  tmp_path):
    server = fake_cloud.add_server("host1")
    conf = operation.load_conf([write_config(tmp_path, MISTRAL_CONF)], None)
    watch = operation.Watch(mistral, EXECUTION, 60, True)
    watch.interrupt("interrupted by SIGTERM")

    result = operation.execute(conf, actions.Operation.HOST_EVACUATE_LIVE,
                               {"hosts": ["host1"]}, EXECUTION, watch)

    assert result.error["interrupted"] is True
    (row,) = result.error["results"]
    assert (row["server"], row["status"]) == (server.id, "skipped")
    assert fake_cloud.migrations == []


@pytest.mark.parametrize(("states", "reason"), [
    ({}, None),
    ({"workflow": "CANCELLED"},
     "interrupted by Mistral: workflow execution wf-1 is CANCELLED"),
    ({"task": "ERROR"}, "interrupted by Mistral: task task-1 is ERROR"),
    ({"action": "ERROR", "task": "ERROR"},
     "interrupted by Mistral: action execution ac-1 is ERROR"),
    ({"workflow": "PAUSED"}, None),
], ids=["running", "cancelled", "timed-out", "action-ended", "paused"])
def test_what_ends_the_wait(states, reason):
    watch = operation.Watch(FakeMistral(**states), EXECUTION, 1, True)

    assert watch.ended() == reason


def test_an_unreachable_mistral_stops_nothing():
    def unreachable() -> str:
        raise ks_exc.ConnectFailure("no route")

    watch = operation.Watch(FakeMistral(task=unreachable), EXECUTION, 1,
                            True)

    assert watch.ended() is None


@pytest.mark.parametrize(("result", "state", "output"), [
    (mistral_actions.Result(data={"a": 1}), "SUCCESS", {"a": 1}),
    (mistral_actions.Result(error={"e": 2}), "ERROR", {"e": 2}),
], ids=["success", "error"])
def test_the_result_is_reported_after_mistral_came_back(result, state,
                                                        output):
    mistral = FakeMistral()
    mistral.report_errors = [ks_exc.ConnectFailure("down"),
                             ks_exc.ServiceUnavailable()]
    slept: list[float] = []

    assert detached.report(mistral, "ac-1", result, timeout=600,
                           interval=5, sleep=slept.append) is True
    assert mistral.reports == [("ac-1", state, output)]
    assert slept == [5, 5]


def test_a_result_mistral_refuses_is_not_retried():
    mistral = FakeMistral()
    mistral.report_errors = [ks_exc.BadRequest("already completed")]
    slept: list[float] = []

    assert detached.report(mistral, "ac-1",
                           mistral_actions.Result(data={}), timeout=600,
                           interval=5, sleep=slept.append) is False
    assert (mistral.reports, slept) == ([], [])


def test_the_detached_process_runs_the_operation_and_reports(
        fake_cloud, mistral, tmp_path):
    server = fake_cloud.add_server("host1")
    spec = detached.Spec("host-evacuate-live", {"hosts": ["host1"]},
                         [write_config(tmp_path, MISTRAL_CONF)], None,
                         EXECUTION)

    assert detached.main(io.StringIO(spec.to_json())) == 0

    ((execution_id, state, output),) = mistral.reports
    assert (execution_id, state) == ("ac-1", "SUCCESS")
    assert output["results"][0]["server"] == server.id
    assert fake_cloud.get_server(server.id).host != "host1"


class _MistralAPI(http.server.BaseHTTPRequestHandler):
    """Mistral's API for one action execution: RUNNING until reported."""

    reports: "queue.Queue[tuple[str, Any]]"

    def do_GET(self) -> None:
        self._reply({"state": "RUNNING"})

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.reports.put((self.path, json.loads(self.rfile.read(length))))
        self._reply({})

    def _reply(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_spawned_process_reports_over_http(tmp_path):
    """The real detached process, started like the executor starts it,
    reports through keystoneauth to Mistral's API (here: the operation is
    refused, no Nova is configured)."""
    handler = type("API", (_MistralAPI,), {"reports": queue.Queue()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = write_config(tmp_path, (
            "[mistral]\nendpoint_override = "
            f"http://127.0.0.1:{server.server_address[1]}/v2\n"))
        detached.spawn(detached.Spec(
            "host-evacuate-live", {"hosts": ["host1"]}, [config], None,
            EXECUTION))

        path, body = handler.reports.get(timeout=120)
    finally:
        server.shutdown()
        server.server_close()

    assert path == "/v2/action_executions/ac-1"
    assert body["state"] == "ERROR"
    assert body["output"]["exit_code"] == 2
    assert body["output"]["error"].startswith("[nova]: ")
