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
"""The exceptions of nova-migrate-flows and the exit codes they map to.

Every error that reaches the command line is one of these; the command line
maps it to an exit code in one place (:mod:`nova_migrate_flows.cli.main`).
"""

import enum
from typing import Any


class ExitCode(enum.IntEnum):
    """The exit codes of ``nova-migrate-flow``, shared by every command."""

    #: Everything asked for was done (and verified).
    OK = 0
    #: The operation ran, but some servers failed (each one was left safe,
    #: unless its outcome's reason says NOT left safe: Nova left it in
    #: ERROR).
    SERVERS_FAILED = 1
    #: Bad input or configuration; nothing was changed in the cloud.
    BAD_INPUT = 2
    #: Interrupted (SIGINT or SIGTERM); the summary says what was done.
    INTERRUPTED = 3
    #: Nova is unreachable, or authentication or authorisation failed.
    NOVA_UNAVAILABLE = 4


class NovaMigrateFlowsError(Exception):
    """Base class of the errors of this project."""

    exit_code: ExitCode = ExitCode.SERVERS_FAILED


class InvalidInput(NovaMigrateFlowsError):
    """The caller asked for something that cannot be done; nothing changed."""

    exit_code = ExitCode.BAD_INPUT


class Unsupported(InvalidInput):
    """The cloud's compute API is too old for what was asked; nothing was
    changed."""


class PreflightFailed(InvalidInput):
    """A preflight check refused the operation; nothing was changed.

    ``plan`` is the plan with every verdict, as ``--dry-run`` shows it.
    """

    def __init__(self, message: str, plan: dict[str, Any]):
        super().__init__(message)
        self.plan = plan


class ConfigurationError(InvalidInput):
    """The configuration is missing, unreadable or holds a bad value."""


class PluginError(ConfigurationError):
    """A configured task plugin is unknown or fails to load."""

    def __init__(self, message: str, name: str, installed: list[str]):
        super().__init__(message)
        self.name = name
        self.installed = installed


class NovaUnavailable(NovaMigrateFlowsError):
    """Nova cannot be reached, or it refused our credentials."""

    exit_code = ExitCode.NOVA_UNAVAILABLE


class AuthenticationFailed(NovaUnavailable):
    """The credentials were refused (HTTP 401)."""


class NotAuthorized(NovaUnavailable):
    """The credentials lack a permission the operation needs (HTTP 403)."""


class Interrupted(NovaMigrateFlowsError):
    """The run was stopped by a signal before it finished."""

    exit_code = ExitCode.INTERRUPTED


class RunTakenOver(NovaMigrateFlowsError):
    """Another process claimed (resumed) the run: this one stopped, and
    wrote nothing more to the run's record."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, run_id: str, holder: dict[str, Any]):
        where = (f" (host {holder.get('host')}, pid {holder.get('pid')})"
                 if holder else "")
        super().__init__(
            f"run {run_id} was resumed by another process{where}: this "
            "process stopped without writing to the run's record again")
        self.run_id = run_id
        self.holder = holder


class OperationFailed(NovaMigrateFlowsError):
    """The operation ran, but did not reach its goal for some servers."""

    exit_code = ExitCode.SERVERS_FAILED


class HookFailed(OperationFailed):
    """A maintenance hook exited non-zero or ran out of time."""


class ComputeError(NovaMigrateFlowsError):
    """Nova answered a request with an error."""

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id


class NotFound(ComputeError):
    """Nova does not know the thing asked for (HTTP 404)."""


class BadRequest(ComputeError):
    """Nova refused the request as invalid (HTTP 400)."""


class Conflict(ComputeError):
    """Nova refused the request in the resource's state (HTTP 409)."""


class NoValidHost(ComputeError):
    """Nova's scheduler found no host for the server."""


class AmbiguousWrite(ComputeError):
    """A write may or may not have reached Nova (reset, timeout, 5xx).

    Never repeat such a write blindly: look at what Nova did first.
    """


class MigrationFailed(OperationFailed):
    """A migration ended without moving the server where it should be."""

    def __init__(
        self,
        message: str,
        server_id: str,
        migration_id: int | None = None,
        status: str | None = None,
    ):
        super().__init__(message)
        self.server_id = server_id
        self.migration_id = migration_id
        self.status = status


class MigrationStopped(MigrationFailed):
    """The run's stop (an interruption) aborted a migration: the server did
    not move, and a resume moves it."""


class MigrationTimeout(MigrationFailed):
    """A migration exceeded its completion or progress timeout."""


class VerificationFailed(OperationFailed):
    """A server moved, but is not as it must be after the move."""


class SandboxError(NovaMigrateFlowsError):
    """The sandbox cloud could not be started, reached or stopped."""

    exit_code = ExitCode.SERVERS_FAILED
