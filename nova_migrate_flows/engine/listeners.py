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
"""The listener every engine runs under: state changes to the log.

It logs atom names and states only (at DEBUG), never arguments or results
(they could one day hold something secret), and an unexpected failure as
one WARNING line: the traceback only at DEBUG level, since most failures
here are expected ones (a migration Nova refused) that a traceback would
only bury. Tasks that undo something say so themselves.
"""

from typing import Any

from oslo_log import log as logging
from taskflow import states
from taskflow.listeners import base

from nova_migrate_flows import exceptions

LOG = logging.getLogger(__name__)


class LoggingListener(base.Listener):
    """Logs flow, task and retry state changes of one engine."""

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        LOG.debug("Flow %s is %s", details.get("flow_name"), state)

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom("Task", state, details)

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom("Retry", state, details)

    def _atom(self, kind: str, state: str, details: dict[str, Any]) -> None:
        name = details.get("task_name") or details.get("retry_name")
        if state == states.FAILURE:
            failure = details.get("result")
            text = getattr(failure, "exception_str", "") or str(failure)
            # Bad input is the command's error line; a server's failure is
            # its outcome's: log neither twice.
            expected = failure is not None and failure.check(
                exceptions.InvalidInput, exceptions.OperationFailed,
                exceptions.NoValidHost,
            )
            LOG.log(logging.DEBUG if expected else logging.WARNING,
                    "%s %s failed: %s", kind, name,
                    text.splitlines()[0] if text else "unknown error")
            if LOG.isEnabledFor(logging.DEBUG):
                LOG.debug("%s %s traceback:\n%s", kind, name,
                          getattr(failure, "traceback_str", ""))
            return
        LOG.debug("%s %s is %s", kind, name, state)
