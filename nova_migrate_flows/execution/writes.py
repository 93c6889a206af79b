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
"""Writes to Nova that tasks send once, looking at Nova before any resend.

The compute layer never repeats a write: when the answer to one is lost (a
reset connection, a timeout, HTTP 5xx) it raises
:class:`~nova_migrate_flows.exceptions.AmbiguousWrite`, and when Nova
refuses one for now (HTTP 409, "instance is in task_state ...") it raises
:class:`~nova_migrate_flows.exceptions.Conflict`. :func:`send_once` is what
a task does then: it looks at what Nova shows, takes the write as done when
Nova shows its effect, and sends it again only when Nova shows it did not
happen: after a few lost answers at most, and for ``[nova]
conflict_timeout`` seconds at most after 409s. It needs of the run only
what :class:`Writer` says (a
:class:`~nova_migrate_flows.execution.runtime.Runtime` is one).
"""

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from oslo_config import cfg
from oslo_log import log as logging

from nova_migrate_flows import exceptions

LOG = logging.getLogger(__name__)

#: How many times a write whose answer was lost is looked into and resent.
AMBIGUOUS_ATTEMPTS = 3
#: The first and the longest wait before a write Nova refused is resent.
CONFLICT_DELAY = 1.0
CONFLICT_DELAY_MAX = 15.0

Sent = TypeVar("Sent")
Seen = TypeVar("Seen")


class Writer(Protocol):
    """What a write needs of the run that sends it."""

    #: The run's options (``[nova] conflict_timeout``).
    conf: cfg.ConfigOpts

    def before_write(self) -> None:
        """Called before every write the run sends."""


def send_once(
    runtime: Writer,
    what: str,
    send: Callable[[], Sent],
    done: Callable[[], Seen | None],
) -> Sent | Seen:
    """Send a write; after a lost answer or a 409, look before resending.

    :param what: the write, for messages ("the start of server X")
    :param send: sends the write once; its result is returned
    :param done: reads Nova: what shows that the write took effect, or
        None when Nova shows it did not; what it returns is returned
    :raises AmbiguousWrite: the answer was lost AMBIGUOUS_ATTEMPTS times
        and Nova never showed the effect
    :raises OperationFailed: Nova refused the write for ``[nova]
        conflict_timeout`` seconds
    :raises ComputeError: Nova refused the write otherwise (after a lost
        answer, only if Nova does not show the write's effect either)
    """
    runtime.before_write()
    timeout = runtime.conf.nova.conflict_timeout
    deadline = time.monotonic() + timeout
    ambiguous = 0
    delay = CONFLICT_DELAY
    while True:
        try:
            return send()
        except exceptions.AmbiguousWrite as exc:
            ambiguous += 1
            LOG.warning("The answer to %s was lost (%s); looking at what "
                        "Nova did", what, exc)
            found = done()
            if found is not None:
                LOG.info("Nova shows %s took effect", what)
                return found
            if ambiguous >= AMBIGUOUS_ATTEMPTS:
                raise
            LOG.info("Nova shows %s did not take effect; sending it again",
                     what)
        except exceptions.Conflict as exc:
            found = done()
            if found is not None:
                return found
            if time.monotonic() + delay > deadline:
                raise exceptions.OperationFailed(
                    f"Nova kept refusing {what} for {timeout} s: {exc}"
                ) from exc
            LOG.info("Nova refused %s for now (%s); retrying in %.0f s",
                     what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, CONFLICT_DELAY_MAX)
        except exceptions.ComputeError:
            # A resend refused: the earlier, lost one may have done it.
            if ambiguous:
                found = done()
                if found is not None:
                    return found
            raise
