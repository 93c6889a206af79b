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
"""An example verification: the server kept its metadata.

A third-party verify task subclasses VerifyTask and implements ``verify``;
it is registered as an entry point in ``nova_migrate_flows.tasks`` and
listed in ``[migration] verify_tasks``.
"""

import time

from oslo_log import log as logging

from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)

#: Set this metadata key on a server to make this check fail (for tests).
FAIL_KEY = "nmf_example:fail_verify"
#: Seconds SlowVerify takes for a server with this metadata key.
DELAY_KEY = "nmf_example:verify_delay"


class MetadataKept(base.VerifyTask):
    """The server kept its metadata through the move (example plugin)."""

    def verify(self, runtime, moved, request):
        before = moved.before_server.metadata
        after = moved.after_server.metadata if moved.after_server else {}
        if after.get(FAIL_KEY):
            return base.fail(f"metadata {FAIL_KEY} is set")
        if before != after:
            return base.fail(f"metadata changed: {before} -> {after}")
        LOG.info("example-metadata-kept: %s kept its %d metadata item(s)",
                 moved.server_id, len(after))
        return base.passed(f"{len(after)} item(s) kept")


class SlowVerify(base.VerifyTask):
    """Takes its time before passing (example plugin, for crash tests)."""

    def verify(self, runtime, moved, request):
        after = moved.after_server
        delay = float((after.metadata if after else {}).get(DELAY_KEY, 0))
        LOG.info("example-slow-verify: verifying %s for %.1f s",
                 moved.server_id, delay)
        time.sleep(delay)
        return base.passed(f"waited {delay:.1f} s")
