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
"""What a run did: the :class:`RunResult` that every way in (command line,
API, Mistral) gets, with its JSON form (the command line's ``--format
json``, the API's and Mistral's results), and the helpers that read it out
of the engines and the compute interface.
"""

import dataclasses
from typing import Any

from taskflow import exceptions as tf_exc

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.compute import base as compute_base


@dataclasses.dataclass
class RunResult:
    """What a run did, server by server and host by host."""

    run_id: str
    operation: str
    outcomes: list[dict[str, Any]]
    hosts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    plan: dict[str, Any] | None = None
    dry_run: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0
    requests: int | None = None
    #: The jobs ``submit`` posted: job id, name and flow.
    jobs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o["status"] == status)

    @property
    def exit_code(self) -> exceptions.ExitCode:
        if self.interrupted:
            return exceptions.ExitCode.INTERRUPTED
        if self.dry_run:
            refused = any(
                e.get("refused") for e in (self.plan or {}).values()
            )
            return (exceptions.ExitCode.BAD_INPUT if refused
                    else exceptions.ExitCode.OK)
        if self.count(constants.ServerStatus.FAILED):
            return exceptions.ExitCode.SERVERS_FAILED
        # A drained host that is not empty, a host that did not leave
        # maintenance.
        if any(not h.get("empty", True) or h.get("done") is False
               for h in self.hosts):
            return exceptions.ExitCode.SERVERS_FAILED
        return exceptions.ExitCode.OK

    def summary(self) -> dict[str, int]:
        return {
            status: self.count(status) for status in (
                constants.ServerStatus.MIGRATED, constants.ServerStatus.FAILED,
                constants.ServerStatus.SKIPPED,
            )
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "operation": self.operation,
            "results": self.outcomes,
            "summary": self.summary(),
            "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 1),
        }
        if self.hosts:
            data["hosts"] = self.hosts
        if self.jobs:
            data["jobs"] = self.jobs
        if self.dry_run:
            data["dry_run"] = True
            data["plan"] = [
                plan_row(entry) for entry in (self.plan or {}).values()
            ]
        return data


def plan_row(entry: dict[str, Any]) -> dict[str, Any]:
    """One server of a plan, as ``--dry-run`` shows it."""
    server = entry["server"]
    return {
        "server": server["id"],
        "name": server.get("name"),
        "host": server.get("host"),
        "flavor": (server.get("flavor") or {}).get("name"),
        "state": server.get("status"),
        "action": entry["action"],
        "target": entry.get("target_host") or "scheduler",
        "block_migration": entry.get("block_migration"),
        "checks": entry.get("checks", {}),
        "refused": entry.get("refused", []),
        "skip_reason": entry.get("skip_reason"),
    }


def host_result(engine: Any, host: str) -> dict[str, Any]:
    """What a host's last flow says of the host (emptied, its service)."""
    state = engine.storage.get_flow_state()
    try:
        result = engine.storage.fetch(constants.host_key("result", host))
    except tf_exc.NotFound:
        result = None
    if not isinstance(result, dict):  # not reached, or failed
        return {"host": host, "flow": state, "empty": False,
                "service": "unknown"}
    return dict(result, flow=state)


def total_requests(compute: compute_base.Compute) -> int | None:
    """The compute API requests sent, when the compute counts them."""
    counts = getattr(compute, "request_counts", None)
    if counts is None:
        return None
    return sum(v for k, v in counts.items() if k.endswith(" compute"))
