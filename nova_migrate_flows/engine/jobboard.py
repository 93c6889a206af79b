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
"""The jobboard shared by submitters and conductors.

TaskFlow's Redis jobboard claims jobs for ever unless a claim is given an
expiry, so a conductor that dies keeps its jobs claimed: here every claim
expires after ``[jobboard] claim_expiry`` seconds, and the conductor renews
the claims of the jobs it runs (:class:`ClaimKeeper`). ZooKeeper claims are
ephemeral nodes, which end with the conductor's session: the session
timeout is ``claim_expiry`` too.
"""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from taskflow.jobs.backends import impl_redis
from taskflow.listeners import base as listeners_base

from nova_migrate_flows import exceptions

LOG = logging.getLogger(__name__)


class ExpiringRedisJobBoard(impl_redis.RedisJobBoard):
    """A Redis jobboard whose claims expire unless they are renewed."""

    def __init__(self, name: str, conf: dict[str, Any], claim_expiry: float,
                 persistence: Any = None):
        super().__init__(name, conf, persistence=persistence)
        self.claim_expiry = claim_expiry

    def claim(self, job: Any, who: str, expiry: float | None = None) -> Any:
        return super().claim(job, who, expiry=expiry or self.claim_expiry)


def board_from_conf(conf: cfg.ConfigOpts, backend: Any) -> Any:
    """The configured jobboard, not yet connected."""
    group = conf.jobboard
    if group.backend == "zookeeper":
        from taskflow.jobs.backends import impl_zookeeper

        board = impl_zookeeper.ZookeeperJobBoard(
            group.name,
            {"hosts": group.zookeeper_hosts, "path": f"/{group.name}",
             "timeout": float(group.claim_expiry)},
            persistence=backend,
        )
        board.claim_expiry = None
        return board
    settings: dict[str, Any] = {
        "host": group.redis_host,
        "port": group.redis_port,
        "db": group.redis_db,
        "namespace": group.name,
        "socket_timeout": 10.0,
        "socket_connect_timeout": 5.0,
    }
    if group.redis_password:
        settings["password"] = group.redis_password
    return ExpiringRedisJobBoard(group.name, settings, group.claim_expiry,
                                 persistence=backend)


@contextlib.contextmanager
def connected(conf: cfg.ConfigOpts, backend: Any) -> Iterator[Any]:
    """The configured jobboard, connected for the block."""
    board = board_from_conf(conf, backend)
    where = (conf.jobboard.zookeeper_hosts
             if conf.jobboard.backend == "zookeeper"
             else f"{conf.jobboard.redis_host}:{conf.jobboard.redis_port}")
    try:
        board.connect()
    except Exception as exc:  # noqa: BLE001 - any client error means this
        raise exceptions.ConfigurationError(
            f"[jobboard]: cannot connect to the {conf.jobboard.backend} "
            f"jobboard at {where}: {_why(exc)}"
        ) from None
    try:
        yield board
    finally:
        board.close()


class ClaimKeeper(listeners_base.Listener):
    """Renews a job's claim while its engine runs; suspends the engine if
    the claim is lost (another conductor may own the job now)."""

    def __init__(self, engine: Any, job: Any, expiry: float | None):
        super().__init__(engine)
        self._job = job
        self._expiry = expiry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self) -> None:
        super().register()
        if self._expiry:
            self._thread = threading.Thread(
                target=self._renew, name=f"claim-{self._job.uuid}",
                daemon=True,
            )
            self._thread.start()

    def deregister(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        super().deregister()

    def _renew(self) -> None:
        expiry = self._expiry or 0.0
        while not self._stop.wait(expiry / 3):
            try:
                renewed = self._job.extend_expiry(expiry)
            except Exception:  # noqa: BLE001 - treated as a lost claim
                LOG.exception("Renewing the claim on job %s failed",
                              self._job.uuid)
                renewed = False
            if not renewed:
                LOG.error("Lost the claim on job %s: suspending its engine",
                          self._job.uuid)
                self._engine.suspend()
                return


def _why(exc: BaseException) -> str:
    """What went wrong, in one line, with the fix when it is known."""
    cause = exc.__cause__
    if cause is not None and "server version" in str(cause):
        # TaskFlow checks the ZooKeeper version with the "envi" four-letter
        # word, which ZooKeeper 3.5 and later refuse unless allowed.
        return (f"{_first_line(cause)} (allow the 'envi' command: "
                "4lw.commands.whitelist = envi in zoo.cfg)")
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
