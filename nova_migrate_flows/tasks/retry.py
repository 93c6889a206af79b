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
"""The retry controller of a server's move: which target host to try.

Targets are tried in turn when Nova finds no valid host on one (a target
given on the command line, the configured ``[drain] candidate_hosts``, or
just Nova's scheduler). When the targets are used up, or the failure is of
another kind, the controller gives up *on that server only*: it runs the
server's sub-flow once more with ``give_up`` set, the tasks do nothing, and
the outcome task reports the server failed, so that the other servers go
on. Errors that concern the whole run (Nova unreachable, credentials
refused, an interruption) revert the whole flow.
"""

from typing import Any

from taskflow import retry

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows.tasks import base

#: Failures that no other server would escape either.
FATAL = (exceptions.NovaUnavailable, exceptions.Interrupted)


class TargetHostRetry(retry.Retry):
    """Tries the candidate target hosts of one server, then gives up."""

    def __init__(self, server_id: str, candidates: list[str | None]):
        super().__init__(
            name=constants.server_key("targets", server_id),
            provides=constants.server_key("target", server_id),
        )
        self._candidates = list(candidates) or [None]

    def execute(self, history: retry.History, *args: Any,
                **kwargs: Any) -> dict[str, Any]:
        attempt = len(history)
        if attempt == 0:
            return {"host": self._candidates[0], "give_up": False,
                    "attempt": 1}
        failures = [failure for _, failure in history.outcomes_iter(
            attempt - 1)]
        retryable = all(f.check(exceptions.NoValidHost) for f in failures)
        if retryable and attempt < len(self._candidates):
            return {"host": self._candidates[attempt], "give_up": False,
                    "attempt": attempt + 1}
        reasons = [_reason(f) for f in failures] or ["unknown failure"]
        return {"host": None, "give_up": True, "attempt": attempt + 1,
                "reason": "; ".join(dict.fromkeys(reasons)),
                "stopped": any(f.check(exceptions.MigrationStopped)
                               for f in failures)}

    def on_failure(self, history: retry.History, *args: Any,
                   **kwargs: Any) -> retry.Decision:
        latest = list(history.outcomes_iter(len(history) - 1))
        if any(failure.check(*FATAL) for _, failure in latest):
            return retry.REVERT_ALL
        value = history[len(history) - 1][0] or {}
        if value.get("give_up"):
            return retry.REVERT_ALL
        return retry.RETRY

    def revert(self, history: retry.History, *args: Any,
               **kwargs: Any) -> None:
        """Nothing to undo: the controller only chose hosts."""


base.remember_signatures(TargetHostRetry)


def _reason(failure: Any) -> str:
    text = failure.exception_str or ", ".join(failure)
    return text.splitlines()[0] if text else "unknown failure"
