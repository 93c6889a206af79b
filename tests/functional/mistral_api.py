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
"""A few calls to a real Mistral's v2 API (authentication disabled), as an
operator's client would make them."""

import json
import time
from typing import Any

import requests

#: Execution states Mistral never leaves.
FINISHED = ("SUCCESS", "ERROR", "CANCELLED")


class Mistral:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, self.url + path, timeout=30,
                                      **kwargs)
        assert response.ok, (method, path, response.status_code,
                             response.text)
        return response.json()

    def define(self, definition: str) -> None:
        """Create the workflows of ``definition``, or update them."""
        headers = {"Content-Type": "text/plain"}
        response = self._http.post(self.url + "/workflows", data=definition,
                                   headers=headers, timeout=30)
        if response.status_code == 409:
            self._call("PUT", "/workflows", data=definition,
                       headers=headers)
        else:
            assert response.ok, response.text

    def start(self, workflow: str, **workflow_input: Any) -> str:
        execution = self._call("POST", "/executions", json={
            "workflow_name": workflow, "input": json.dumps(workflow_input)})
        return str(execution["id"])

    def execution(self, execution_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/executions/{execution_id}"))

    def cancel(self, execution_id: str) -> None:
        self._call("PUT", f"/executions/{execution_id}",
                   json={"state": "CANCELLED"})

    def tasks(self, execution_id: str) -> list[dict[str, Any]]:
        return list(self._call(
            "GET", f"/executions/{execution_id}/tasks")["tasks"])

    def action_executions(self, task_id: str) -> list[dict[str, Any]]:
        return list(self._call(
            "GET", f"/tasks/{task_id}/action_executions"
        )["action_executions"])

    def action_execution(self, action_execution_id: str) -> dict[str, Any]:
        return dict(self._call(
            "GET", f"/action_executions/{action_execution_id}"))

    def wait(self, get: Any, timeout: float) -> dict[str, Any]:
        """``get()`` once its state is a finished one."""
        deadline = time.monotonic() + timeout
        while True:
            found = get()
            if found["state"] in FINISHED:
                return dict(found)
            assert time.monotonic() < deadline, found
            time.sleep(0.5)

    def wait_for_execution(self, execution_id: str,
                           timeout: float = 120.0) -> dict[str, Any]:
        return self.wait(lambda: self.execution(execution_id), timeout)


def output(execution: dict[str, Any]) -> Any:
    """An execution's (or action execution's) output, decoded."""
    text = execution["output"]
    return json.loads(text) if isinstance(text, str) else text
