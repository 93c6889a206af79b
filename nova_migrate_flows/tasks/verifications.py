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
"""The one atom that verifies a moved server.

Each verification stays a plugin (a
:class:`~nova_migrate_flows.tasks.base.VerifyTask`, an entry point chosen by
name in ``[migration] verify_tasks``), but a server's verifications run in
ONE atom, :class:`VerifyServer`, in the configured order: TaskFlow's cost
is per atom (scheduling, state saves, locks), and one atom per verification
made it most of a large drain's CPU. The atom records each verification's
verdict under its plugin name; the first that fails stops the rest and
fails the atom with its plugin named, as a failing verification's own
atom did.
"""

from collections.abc import Sequence
from typing import Any

from oslo_log import log as logging

from nova_migrate_flows import constants
from nova_migrate_flows.tasks import base

LOG = logging.getLogger(__name__)


class VerifyServer(base.BaseTask):
    """Runs the verifications of one moved server, in order, and records
    each verdict under its plugin's name.

    Reversion strategy: N/A (verifications change nothing).
    """

    def __init__(self, server_id: str, checks: Sequence[base.VerifyTask],
                 **kwargs: Any):
        required: dict[str, None] = {}
        optional: dict[str, None] = {}
        for check in checks:
            required.update(dict.fromkeys(check.requires))
            optional.update(dict.fromkeys(check.optional))
        super().__init__(
            name=constants.server_key("verify", server_id),
            provides=constants.server_key("verified", server_id),
            requires=list(required),
            **kwargs,
        )
        # What a check takes only when the store has it reaches it as it
        # would reach the check's own atom.
        extra = [name for name in optional if name not in required]
        self.rebind.update((name, name) for name in extra)
        # (TaskFlow's Atom sets ``optional`` untyped.)
        self.optional = self.optional.union(extra)  # type: ignore[has-type]
        self.checks = list(checks)

    def execute(self, **stored: Any) -> dict[str, Any]:
        """Each check's verdict (a dict), by plugin name; a failed check
        raises :class:`~nova_migrate_flows.exceptions.VerificationFailed`
        and the checks after it do not run."""
        verdicts: dict[str, Any] = {}
        for check in self.checks:
            arguments = {arg: stored[name]
                         for arg, name in check.rebind.items()
                         if name in stored}
            verdicts[check.plugin_name] = check.execute(**arguments)
            LOG.debug("%s: %s", check.name, verdicts[check.plugin_name])
        return verdicts
