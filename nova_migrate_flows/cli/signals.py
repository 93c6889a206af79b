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
"""SIGINT and SIGTERM during a run.

The first signal stops the run gracefully: no new migration starts, the
migrations in flight are aborted or finished (``[drain] interrupt_action``),
services are restored as the flows' rules say, and the summary is printed
(exit code 3). A second signal ends the process at once; what was recorded
so far is consistent, and ``nova-migrate-flow resume`` can pick it up.
"""

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Protocol

from nova_migrate_flows.exceptions import ExitCode


class Stoppable(Protocol):
    def stop(self, abort_in_flight: bool, reason: str = ...) -> None: ...


@contextlib.contextmanager
def graceful_interrupts(
    runner: Stoppable, interrupt_action: str
) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``runner`` while the block runs."""
    received: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        received.append(signum)
        if len(received) > 1:
            sys.stderr.write(
                f"\n{name} again: stopping now; finish the run later with "
                "'nova-migrate-flow resume'\n"
            )
            sys.stderr.flush()
            os._exit(ExitCode.INTERRUPTED)
        sys.stderr.write(
            f"\n{name}: no new migration starts; "
            + ("aborting the migrations in flight"
               if interrupt_action == "abort"
               else "letting the migrations in flight finish")
            + " (send it again to stop at once)\n"
        )
        sys.stderr.flush()
        runner.stop(interrupt_action == "abort", f"interrupted by {name}")

    previous = {
        sig: signal.signal(sig, handle)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
