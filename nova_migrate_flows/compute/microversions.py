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
"""Which compute API microversion each request is sent at.

For every kind of request it sends, the tool knows the newest microversion
it speaks and the oldest it can do with. The cloud says its own range once
per run (its version document, ``GET /v2.1/``); a request goes at the
newest microversion both know, and one the cloud is too old for is refused
before anything changes.

The oldest Nova this tool supports is 21 (Ussuri, compute API 2.87). Every
request works from there, at the microversion of this table, with two
negotiated: an evacuation (2.95, where Nova leaves the evacuated server
stopped, down to 2.68, where it keeps its state) and an unshelve onto a
given host (2.91 or nothing).
"""

import dataclasses

#: The oldest compute API this tool supports, and the release that has it.
OLDEST_SUPPORTED = "2.87"
OLDEST_RELEASE = "Nova 21 (Ussuri)"


@dataclasses.dataclass(frozen=True)
class Call:
    """A kind of request: the newest microversion the tool speaks for it,
    and the oldest it can do with."""

    newest: str
    oldest: str
    #: The request in words, for messages.
    what: str


SERVERS = Call("2.73", "2.73", "reading servers")
SERVICES = Call("2.53", "2.53", "reading and updating compute services")
MIGRATIONS = Call("2.80", "2.80", "listing migrations")
LIVE_MIGRATE = Call("2.68", "2.68", "a live migration")
#: ``force`` went away in 2.68: a forced live migration is sent at 2.67.
LIVE_MIGRATE_FORCED = Call("2.67", "2.67", "a forced live migration")
COLD_MIGRATE = Call("2.56", "2.56", "a cold migration onto a host")
EVACUATE = Call("2.95", "2.68", "an evacuation")
ABORT = Call("2.65", "2.65", "aborting a live migration")
FORCE_COMPLETE = Call("2.22", "2.22", "forcing a live migration to complete")
ACTIONS = Call("2.84", "2.84", "reading instance actions")
FLAVORS = Call("2.61", "2.61", "reading flavors")
HYPERVISORS = Call("2.53", "2.53", "reading hypervisors")
UNSHELVE_TO_HOST = Call("2.91", "2.91", "an unshelve onto a given host")
#: 2.64 names a group's ``policy`` (one) and gives its ``rules``.
SERVER_GROUPS = Call("2.64", "2.64", "reading server groups")


class TooOld(Exception):
    """The cloud's compute API is older than a request needs."""

    def __init__(self, call: Call, cloud_max: str):
        super().__init__(
            f"{call.what} needs compute API microversion {call.oldest}; "
            f"the cloud's maximum is {cloud_max}"
        )
        self.call = call
        self.cloud_max = cloud_max


def parse(version: str) -> tuple[int, int]:
    """``"2.95"`` -> ``(2, 95)``."""
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def supports(cloud_max: str, version: str) -> bool:
    """Whether a cloud whose maximum is ``cloud_max`` speaks ``version``."""
    return parse(cloud_max) >= parse(version)


def negotiate(call: Call, cloud_max: str) -> str:
    """The microversion to send ``call`` at; TooOld if there is none."""
    if supports(cloud_max, call.newest):
        return call.newest
    if supports(cloud_max, call.oldest):
        return cloud_max
    raise TooOld(call, cloud_max)


def oldest_supported_error(cloud_max: str) -> str | None:
    """Why a cloud of maximum ``cloud_max`` is too old for this tool, or
    None."""
    if supports(cloud_max, OLDEST_SUPPORTED):
        return None
    return (f"the cloud's compute API goes up to microversion {cloud_max}; "
            f"this tool needs {OLDEST_SUPPORTED} ({OLDEST_RELEASE}) or "
            "later")
