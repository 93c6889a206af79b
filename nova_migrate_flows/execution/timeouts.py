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
"""The timeout policy of a migration: its limits and the action they call.

:class:`Timeouts` holds the limits of one migration (in seconds, on the
poller's clock): the completion timeout counts from when the migration was
first seen running, the progress timeout from the last time more data was
copied. When one runs out, the action is taken: ``abort`` the migration,
``force_complete`` it, or ``fail`` (leave it running). Whatever the
action, the task hears of the timeout: when the migration ends if Nova took
the abort or the force-complete, at once otherwise. Plain numbers in and
out: no clock, no Nova.
"""

import dataclasses

ABORT = "abort"
FORCE_COMPLETE = "force_complete"
FAIL = "fail"

#: What the poller does on a timeout, in words for the log.
DOING = {
    ABORT: "aborting it",
    FORCE_COMPLETE: "forcing it to complete",
    FAIL: "leaving it running",
}


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The limits of one migration, in seconds (None: no limit)."""

    completion: float | None = None
    progress: float | None = None
    action: str = ABORT

    def deadlines(
        self, running_since: float, last_progress_at: float | None
    ) -> list[float]:
        """When the limits of a migration running since ``running_since``
        (and last seen progressing at ``last_progress_at``) run out."""
        moments = []
        if self.completion:
            moments.append(running_since + self.completion)
        if self.progress and last_progress_at is not None:
            moments.append(last_progress_at + self.progress)
        return moments

    def exceeded(
        self,
        running_since: float,
        last_progress_at: float | None,
        now: float,
    ) -> str | None:
        """The limit the migration is past at ``now``, in words, or None."""
        if self.completion and now - running_since > self.completion:
            return f"completion timeout of {self.completion:.0f} s"
        if (
            self.progress
            and last_progress_at is not None
            and now - last_progress_at > self.progress
        ):
            return f"no progress for {self.progress:.0f} s"
        return None
