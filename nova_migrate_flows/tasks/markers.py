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
"""The disabled reasons this tool writes on compute services.

Every one starts with :data:`REASON_PREFIX`. A host in maintenance carries
a *marker*: ``nova-migrate-flows: maintenance since TIME (run RUN_ID):
REASON``. Nova keeps it, so any client (``openstack compute service list
--long``) and ``host-maintenance status`` see which run put the host there;
that run's record says what moved.
"""

import dataclasses
import datetime
import re

#: Every disabled reason this tool writes starts with this.
REASON_PREFIX = "nova-migrate-flows"

#: Nova keeps at most this many characters of a disabled reason.
REASON_LENGTH = 255

_MARKER = re.compile(
    re.escape(REASON_PREFIX)
    + r": maintenance since (?P<since>\S+) \(run (?P<run_id>[^)]+)\)"
    + r"(?:: (?P<reason>.*))?$",
    re.DOTALL,
)


@dataclasses.dataclass(frozen=True)
class Marker:
    """What the disabled reason of a host in maintenance says."""

    run_id: str
    since: str
    reason: str | None = None

    def text(self) -> str:
        text = (f"{REASON_PREFIX}: maintenance since {self.since} "
                f"(run {self.run_id})")
        if self.reason:
            text += f": {self.reason}"
        return text[:REASON_LENGTH]


def new_marker(run_id: str, reason: str | None) -> Marker:
    return Marker(run_id=run_id, since=now(), reason=reason or None)


def parse_marker(disabled_reason: str | None) -> Marker | None:
    """The marker of a host in maintenance, or None for any other reason."""
    found = _MARKER.match(disabled_reason or "")
    if found is None:
        return None
    return Marker(run_id=found["run_id"], since=found["since"],
                  reason=found["reason"] or None)


def now() -> str:
    """The time, as reasons give it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reason(what: str, run_id: str | None) -> str:
    """A disabled reason: this tool, what it did, when, and the run."""
    run = f" (run {run_id})" if run_id else ""
    return f"{REASON_PREFIX}: {what} at {now()}{run}"
