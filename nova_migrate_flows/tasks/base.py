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
"""Base classes of the tasks: what every task, check and verification has.

Task plugins are TaskFlow tasks registered as entry points in the
``nova_migrate_flows.tasks`` namespace. Each class says what kind of plugin
it is (:attr:`BaseTask.kind`) and describes itself in the first line of its
docstring; ``nova-migrate-flow list-tasks`` prints both.
"""

import dataclasses
import inspect
from typing import Any, ClassVar

from taskflow import task

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import models
from nova_migrate_flows.execution import runtime as runtime_mod

PASS = "pass"  # noqa: S105 - a verdict, not a password
WARN = "warn"
SKIP = "skip"
FAIL = "fail"

PREFLIGHT = "preflight"
VERIFY = "verify"
CORE = "core"
#: A task ``host-maintenance roll`` runs once per host while it is empty.
HOOK = "hook"


def remember_signatures(cls: type) -> None:
    """Give the ``execute``, ``revert`` and ``on_failure`` functions of
    ``cls`` (its own or inherited, TaskFlow's default ``revert`` too) their
    ``__signature__``, computed once.

    TaskFlow reads the signatures of an atom's methods each time it makes
    an atom (``inspect.signature``, which parses the function again every
    time): a sixth of the CPU time of building a 1,000-server drain.
    ``inspect.signature`` answers a function's ``__signature__`` at once.
    """
    for name in ("execute", "revert", "on_failure"):
        function = getattr(cls, name, None)
        if inspect.isfunction(function) and not hasattr(function,
                                                        "__signature__"):
            function.__signature__ = (  # type: ignore[attr-defined]
                inspect.signature(function))


class BaseTask(task.Task):
    """A task of nova-migrate-flows."""

    #: ``preflight``, ``verify``, ``core`` or ``hook``.
    kind: ClassVar[str] = CORE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        remember_signatures(cls)

    @classmethod
    def description(cls) -> str:
        """The first paragraph of the class docstring, on one line."""
        doc = inspect.getdoc(cls) or ""
        return " ".join(doc.split("\n\n")[0].split())


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one server."""

    status: str
    message: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def passed(message: str = "", **data: Any) -> CheckResult:
    return CheckResult(PASS, message, data)


def warn(message: str, **data: Any) -> CheckResult:
    return CheckResult(WARN, message, data)


def skip(message: str, **data: Any) -> CheckResult:
    return CheckResult(SKIP, message, data)


def fail(message: str, **data: Any) -> CheckResult:
    return CheckResult(FAIL, message, data)


class PreflightCheck(BaseTask):
    """A check of every server of a plan before anything is changed.

    A check runs once over all the servers (so it can read the cloud once
    for all of them) and returns a verdict per server: pass (possibly with
    data for the plan), warn, skip the server with a reason, or fail, which
    refuses the whole operation before anything changed.

    Reversion strategy: N/A (checks change nothing).
    """

    kind = PREFLIGHT

    def __init__(self, plugin_name: str, **kwargs: Any):
        super().__init__(
            name=f"preflight-{plugin_name}",
            provides=constants.preflight_key(plugin_name),
            **kwargs,
        )
        self.plugin_name = plugin_name

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        servers: dict[str, dict[str, Any]],
        request: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        move = request_mod.MoveRequest.from_dict(request)
        return {
            server_id: self.check(
                runtime, models.Server.from_dict(data), move
            ).to_dict()
            for server_id, data in servers.items()
        }

    def check(
        self,
        runtime: runtime_mod.Runtime,
        server: models.Server,
        request: request_mod.MoveRequest,
    ) -> CheckResult:
        """The verdict on one server."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Moved:
    """What a move did to one server: the input of verifications."""

    server_id: str
    action: str
    source: str | None
    before: dict[str, Any]
    after: dict[str, Any] | None = None
    migration: dict[str, Any] | None = None
    requested_host: str | None = None
    request_id: str | None = None
    started_at: float | None = None
    note: str | None = None
    #: Why the server was not moved (then nothing else is set).
    not_moved: str | None = None
    #: True when the server was not moved because its attempts failed.
    failed: bool = False
    #: True when the run's stop kept the server from moving (its move did
    #: not start, or an interruption aborted it): ``resume`` moves it.
    stopped: bool = False

    @property
    def before_server(self) -> models.Server:
        return models.Server.from_dict(self.before)

    @property
    def after_server(self) -> models.Server | None:
        return models.Server.from_dict(self.after) if self.after else None

    @property
    def migration_record(self) -> models.Migration | None:
        return (
            models.Migration.from_dict(self.migration)
            if self.migration else None
        )

    def to_dict(self) -> dict[str, Any]:
        # Its fields hold plain values and dicts already: no deep copy
        # (dataclasses.asdict took 3 ms per moved server).
        return {field.name: getattr(self, field.name)
                for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Moved":
        return cls(**data)


class VerifyTask(BaseTask):
    """A verification of one server after it moved.

    It passes, or raises
    :class:`~nova_migrate_flows.exceptions.VerificationFailed`, which rolls
    that server back where Nova can (a cold migration is reverted) and
    reports it failed. A server is reported
    migrated only when every verification passed.

    Reversion strategy: N/A (verifications change nothing).
    """

    kind = VERIFY

    def __init__(
        self,
        plugin_name: str,
        server_id: str,
        moved_key: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            name=constants.server_key(f"verify-{plugin_name}", server_id),
            provides=constants.server_key(f"verify-{plugin_name}", server_id),
            rebind={
                "moved": moved_key or constants.server_key("moved", server_id)
            },
            **kwargs,
        )
        self.plugin_name = plugin_name

    def execute(
        self,
        runtime: runtime_mod.Runtime,
        moved: dict[str, Any],
        request: dict[str, Any],
    ) -> dict[str, Any]:
        result = Moved.from_dict(moved)
        if result.not_moved:
            return skip(result.not_moved).to_dict()
        return self.reported(self.verify(
            runtime, result, request_mod.MoveRequest.from_dict(request)
        ))

    def reported(self, verdict: CheckResult) -> dict[str, Any]:
        """The verdict as stored; VerificationFailed if it failed."""
        if verdict.status == FAIL:
            raise exceptions.VerificationFailed(
                f"{self.plugin_name}: {verdict.message}"
            )
        return verdict.to_dict()

    def verify(
        self,
        runtime: runtime_mod.Runtime,
        moved: Moved,
        request: request_mod.MoveRequest,
    ) -> CheckResult:
        """The verdict on one moved server."""
        raise NotImplementedError
