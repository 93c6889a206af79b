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
"""Start, inspect, use and stop a sandbox cloud from another process.

This is what the command line, the functional tests and the benchmarks
use. It imports the standard library, requests and PyYAML only: Nova runs
in the server process it starts (:mod:`nova_migrate_flows.sandbox.server`),
never here.

A sandbox lives in a state directory (see :mod:`.statefiles`); every
function takes that directory.
"""

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import requests

import nova_migrate_flows
from nova_migrate_flows import exceptions
from nova_migrate_flows.sandbox import constants, statefiles

LOG = logging.getLogger(__name__)

SERVER_MODULE = "nova_migrate_flows.sandbox.server"
#: Seconds ``start`` waits for the cloud to be ready.
START_TIMEOUT = 120.0
#: Seconds one request to the sandbox may take.
REQUEST_TIMEOUT = 30.0
#: Microversion ``boot`` creates servers at (2.74: ``host`` in the body).
BOOT_MICROVERSION = "2.74"
_POLL_INTERVAL = 0.2
_LOG_TAIL_LINES = 40

#: Popen objects of the servers this process started, so that stopping
#: one also reaps it.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclasses.dataclass(frozen=True)
class SandboxInfo:
    """A running sandbox: where it is and how to reach it."""

    state_dir: str
    pid: int
    port: int
    #: ``identity``, ``compute``, ``placement`` and ``control`` URLs.
    endpoints: dict[str, str]
    hosts: list[str]
    clouds_yaml: str
    config_file: str
    log_file: str
    image: dict[str, str]
    #: The options the server was started with.
    options: dict[str, Any]
    #: Seconds ``start`` took; None when the sandbox was already running.
    start_seconds: float | None = None
    #: Which Nova runs: ``release`` (e.g. ``26.3.0``), the compute API's
    #: ``min_microversion`` and ``max_microversion``, and ``concurrency``
    #: (``threading`` or ``eventlet``).
    nova: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The server's interpreter: ``version`` and ``executable``.
    python: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_runtime(cls, state: statefiles.StateDir,
                     runtime: Mapping[str, Any],
                     start_seconds: float | None = None) -> "SandboxInfo":
        """Describe the sandbox ``sandbox.json`` tells about."""
        return cls(
            state_dir=state.path,
            pid=int(runtime["pid"]),
            port=int(runtime["port"]),
            endpoints=dict(runtime["endpoints"]),
            hosts=list(runtime["hosts"]),
            clouds_yaml=state.clouds_yaml,
            config_file=state.config_file,
            log_file=state.log_file,
            image=dict(runtime["image"]),
            options=dict(runtime["options"]),
            start_seconds=start_seconds,
            nova=dict(runtime.get("nova") or {}),
            python=dict(runtime.get("python") or {}),
        )


def start(
    state_dir: str | os.PathLike[str],
    computes: int = constants.DEFAULT_COMPUTES,
    *,
    live_migration_duration: float = constants.DEFAULT_LIVE_MIGRATION_DURATION,
    cold_migration_delay: float = constants.DEFAULT_COLD_MIGRATION_DELAY,
    token_ttl: float = constants.DEFAULT_TOKEN_TTL,
    host_vcpus: int = constants.DEFAULT_HOST_VCPUS,
    host_ram_mb: int = constants.DEFAULT_HOST_RAM_MB,
    host_disk_gb: int = constants.DEFAULT_HOST_DISK_GB,
    max_concurrent_live_migrations: int = (
        constants.DEFAULT_MAX_CONCURRENT_LIVE_MIGRATIONS),
    timeout: float = START_TIMEOUT,
    python: str | None = None,
    watch_pid: int | None = None,
    notifications: str | None = None,
) -> SandboxInfo:
    """Start a sandbox in ``state_dir``; return once it is ready.

    The server runs detached (its own session), printing into
    ``sandbox.log``. Ready means the cloud answers, every compute service
    is up and has its resource provider in Placement. Then ``clouds.yaml``
    and ``nova-migrate-flows.conf`` are written.

    :param python: the interpreter to run the server with, one that has
        Nova installed (default: this one). It may be another Python
        (3.10 or later) in a virtualenv of its own, with an older Nova:
        nova-migrate-flows need not be installed there, the server imports
        this copy's sandbox modules.
    :param watch_pid: the server stops by itself once this process is gone
    :param notifications: an oslo.messaging transport URL: Nova emits its
        versioned notifications there (``rabbit://...``)
    :raises InvalidInput: bad options, no interpreter at ``python``, or a
        sandbox already runs there
    :raises SandboxError: the server failed to start (with its log's tail)
    """
    _check_start_options(computes, live_migration_duration,
                         cold_migration_delay, token_ttl, host_vcpus,
                         host_ram_mb, host_disk_gb,
                         max_concurrent_live_migrations)
    interpreter = sys.executable if python is None else _interpreter(python)
    state = statefiles.StateDir.at(state_dir)
    os.makedirs(state.path, exist_ok=True)
    runtime = statefiles.read_runtime(state)
    if runtime is not None:
        if _is_sandbox(int(runtime["pid"])):
            raise exceptions.InvalidInput(
                f"A sandbox already runs in {state.path} "
                f"(pid {runtime['pid']}); stop it first.")
        LOG.info("Cleaning up the stale sandbox of %s (pid %s is gone)",
                 state.path, runtime["pid"])
    statefiles.remove_runtime(state)

    command = [
        interpreter, "-m", SERVER_MODULE,
        "--state-dir", state.path,
        "--computes", str(computes),
        "--live-migration-duration", str(live_migration_duration),
        "--cold-migration-delay", str(cold_migration_delay),
        "--token-ttl", str(token_ttl),
        "--host-vcpus", str(host_vcpus),
        "--host-ram-mb", str(host_ram_mb),
        "--host-disk-gb", str(host_disk_gb),
        "--max-concurrent-live-migrations",
        str(max_concurrent_live_migrations),
    ]
    if watch_pid is not None:
        command += ["--watch-pid", str(watch_pid)]
    if notifications:
        command += ["--notifications", notifications]
    started = time.monotonic()
    with open(state.log_file, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            cwd=state.path,
            env=_server_environment(None if python is None else state))
    _CHILDREN[process.pid] = process
    LOG.info("Started sandbox server %d in %s", process.pid, state.path)
    try:
        runtime = _wait_until_ready(state, process, timeout)
    except BaseException:
        _kill(process.pid)
        statefiles.remove_runtime(state)
        raise
    statefiles.write_clouds_yaml(state, runtime)
    statefiles.write_config(state)
    return SandboxInfo.from_runtime(state, runtime,
                                    time.monotonic() - started)


def info(state_dir: str | os.PathLike[str]) -> SandboxInfo:
    """Describe the sandbox running in ``state_dir``.

    :raises SandboxError: no sandbox runs there
    """
    state = statefiles.StateDir.at(state_dir)
    return SandboxInfo.from_runtime(state, _running_runtime(state))


def status(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the sandbox in ``state_dir`` looks like now.

    ``{"running": False, "state_dir": ...}`` when none runs; otherwise
    also ``pid``, ``endpoints``, ``clouds_yaml``, ``config_file``, ``nova``
    (as :attr:`SandboxInfo.nova`), ``python`` and, from the cloud,
    ``hosts`` (``{host: {state, status, running, capacity, servers}}``),
    ``flavors``, ``images``, ``network`` and ``defaults``.
    """
    state = statefiles.StateDir.at(state_dir)
    runtime = statefiles.read_runtime(state)
    if runtime is None or not _is_sandbox(int(runtime["pid"])):
        return {"running": False, "state_dir": state.path}
    document: dict[str, Any] = {
        "running": True,
        "state_dir": state.path,
        "pid": runtime["pid"],
        "endpoints": runtime["endpoints"],
        "clouds_yaml": state.clouds_yaml,
        "config_file": state.config_file,
        "log_file": state.log_file,
        "options": runtime["options"],
        "nova": runtime.get("nova") or {},
        "python": runtime.get("python") or {},
    }
    document.update(SandboxClient(state.path).status())
    return document


def stop(state_dir: str | os.PathLike[str], timeout: float = 30.0) -> bool:
    """Stop the sandbox in ``state_dir``; True if one was running.

    Asks the server to shut down, sends SIGTERM if it does not answer, and
    kills its process group once ``timeout`` is over; returns when the
    process and its children are gone. Stopping a stopped sandbox does
    nothing.
    """
    state = statefiles.StateDir.at(state_dir)
    runtime = statefiles.read_runtime(state)
    if runtime is None:
        return False
    pid = int(runtime["pid"])
    if not _is_sandbox(pid):
        statefiles.remove_runtime(state)
        return False
    try:
        SandboxClient(state.path).shutdown()
    except exceptions.SandboxError:
        LOG.info("Sandbox %d does not answer: sending SIGTERM", pid)
        _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        LOG.warning("Sandbox %d still runs after %.0f s: killing it",
                    pid, timeout)
    _kill(pid)
    statefiles.remove_runtime(state)
    LOG.info("Stopped the sandbox of %s", state.path)
    return True


def boot(
    state_dir: str | os.PathLike[str],
    host: str,
    count: int = 1,
    flavor: str | None = None,
    stopped: bool = False,
    metadata: Mapping[str, str] | None = None,
    name_prefix: str | None = None,
    config_drive: bool = False,
    boot_from_volume: bool = False,
    wait: bool = True,
    timeout: float = 120.0,
    group: str | None = None,
) -> list[dict[str, Any]]:
    """Create ``count`` servers on ``host`` through the compute API.

    As admin, at microversion 2.74 (``host`` in the request), with the
    sandbox's image and network. With ``wait``, returns once they are
    ACTIVE (SHUTOFF when ``stopped``).

    :param flavor: a flavor name or id (default ``m1.tiny``): one of the
        sandbox's, or one created since
    :param group: the id of a server group to boot them into (Nova's
        scheduler then keeps its policy)
    :param metadata: server metadata, e.g. the ``nmf_sandbox:`` keys
    :param boot_from_volume: boot from a new volume (Nova's fake Cinder)
        made from the image, deleted with the server
    :returns: ``[{"id", "name", "host", "status"}]``
    :raises InvalidInput: unknown host or flavor, bad count
    :raises SandboxError: a server failed to build or was too slow
    """
    state = statefiles.StateDir.at(state_dir)
    runtime = _running_runtime(state)
    if host not in runtime["hosts"]:
        raise exceptions.InvalidInput(
            f"No compute host {host!r}; the hosts are "
            f"{', '.join(runtime['hosts'])}.")
    if count < 1:
        raise exceptions.InvalidInput("The count must be at least 1.")
    cloud = SandboxClient(state.path).status()
    api = _ComputeAPI(runtime)
    try:
        flavor_id = _flavor_id(cloud["flavors"], flavor or "m1.tiny")
    except exceptions.InvalidInput:
        # A flavor created since the sandbox started.
        created = api.request("GET", "/flavors/detail?is_public=None")
        flavor_id = _flavor_id(created["flavors"], str(flavor))
    prefix = name_prefix or f"vm-{host}-{os.urandom(2).hex()}"
    servers = []
    for index in range(1, count + 1):
        body: dict[str, Any] = {
            "name": f"{prefix}-{index:03d}",
            "imageRef": runtime["image"]["id"],
            "flavorRef": flavor_id,
            "networks": [{"uuid": cloud["network"]["id"]}],
            "host": host,
            "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
        }
        if config_drive:
            body["config_drive"] = True
        if boot_from_volume:
            body["imageRef"] = ""
            body["block_device_mapping_v2"] = [{
                "boot_index": 0, "uuid": runtime["image"]["id"],
                "source_type": "image", "destination_type": "volume",
                "volume_size": 1, "delete_on_termination": True}]
        request: dict[str, Any] = {"server": body}
        if group:
            request["os:scheduler_hints"] = {"group": group}
        created = api.request("POST", "/servers", request)
        servers.append({"id": created["server"]["id"], "name": body["name"],
                        "host": host, "status": "BUILD"})
    if not wait:
        return servers
    deadline = time.monotonic() + timeout
    servers = [api.wait_for_status(server["id"], "ACTIVE", deadline)
               for server in servers]
    if stopped:
        for server in servers:
            api.request("POST", f"/servers/{server['id']}/action",
                        {"os-stop": None})
        servers = [api.wait_for_status(server["id"], "SHUTOFF", deadline)
                   for server in servers]
    return servers


class SandboxClient:
    """The sandbox's control API (``/sandbox``), for one state directory.

    It authenticates with the control secret from ``sandbox.json``.

    :raises SandboxError: (every method) no sandbox runs there, or it
        failed to answer
    """

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state = statefiles.StateDir.at(state_dir)
        runtime = _running_runtime(self.state)
        self.url = runtime["endpoints"]["control"]
        self._headers = {
            constants.CONTROL_SECRET_HEADER: runtime["control_secret"]}

    def ready(self) -> bool:
        """Whether every compute is up and known to Placement."""
        document = self._call("GET", "/ready", expect=(200, 503))
        return bool(document["ready"])

    def status(self) -> dict[str, Any]:
        """Hosts, flavors, images, network and driver defaults."""
        return self._call("GET", "/status")

    def defaults(self) -> dict[str, Any]:
        """The driver's sandbox-wide defaults."""
        return self._call("GET", "/defaults")

    def set_defaults(
        self,
        live_migration_duration: float | None = None,
        live_migration_result: str | None = None,
        cold_migration_delay: float | None = None,
    ) -> dict[str, Any]:
        """Change the driver's sandbox-wide defaults; answer all of them.

        They apply to migrations that start afterwards, for servers whose
        metadata does not say otherwise.
        """
        values = {
            "live_migration_duration": live_migration_duration,
            "live_migration_result": live_migration_result,
            "cold_migration_delay": cold_migration_delay,
        }
        return self._call("PUT", "/defaults", {
            key: value for key, value in values.items() if value is not None})

    def set_host_capacity(
        self,
        host: str,
        vcpus: int | None = None,
        memory_mb: int | None = None,
        disk_gb: int | None = None,
    ) -> dict[str, int]:
        """Change what ``host`` has; Placement sees it when this returns."""
        values = {"vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb}
        document = self._call("PUT", f"/hosts/{host}/capacity", {
            key: value for key, value in values.items() if value is not None})
        capacity: dict[str, int] = document["capacity"]
        return capacity

    def stop_compute(self, host: str) -> bool:
        """Stop nova-compute on ``host``; False if it was stopped already.

        Nova reports the service down a few seconds later.
        """
        return bool(self._call("POST", f"/hosts/{host}/stop")["changed"])

    def start_compute(self, host: str) -> bool:
        """Start nova-compute on ``host``; False if it was running."""
        return bool(self._call("POST", f"/hosts/{host}/start")["changed"])

    def request_stats(self) -> dict[str, Any]:
        """API requests counted since the last reset, per service.

        ``{"since": iso, "services": {"compute": {"total": n,
        "requests": {"GET /servers/{id}": n, ...}}, ...}}``
        """
        return self._call("GET", "/stats")

    def reset_stats(self) -> dict[str, Any]:
        """Start counting from zero; answer the counts until now."""
        return self._call("POST", "/stats/reset")

    def set_token_ttl(self, seconds: float) -> float:
        """Make tokens issued from now on live ``seconds``."""
        return float(self._call("PUT", "/identity",
                                {"token_ttl": seconds})["token_ttl"])

    def revoke_tokens(self) -> int:
        """Invalidate every issued token; answer how many there were."""
        return int(self._call("POST", "/identity/revoke")["revoked"])

    def shutdown(self) -> None:
        """Ask the server to stop (it stops in the background)."""
        self._call("POST", "/shutdown", expect=(202,))

    def _call(self, method: str, path: str, body: Any = None,
              expect: tuple[int, ...] = (200,)) -> Any:
        try:
            response = requests.request(
                method, self.url + path, json=body, headers=self._headers,
                timeout=REQUEST_TIMEOUT)
        except requests.RequestException as error:
            raise exceptions.SandboxError(
                f"The sandbox of {self.state.path} does not answer: "
                f"{error}") from error
        if response.status_code in expect:
            return response.json()
        message = _error_message(response)
        if response.status_code in (400, 404):
            raise exceptions.InvalidInput(message)
        raise exceptions.SandboxError(
            f"The sandbox answered {method} {path} with "
            f"{response.status_code}: {message}")


class _ComputeAPI:
    """Just enough of the compute API, as admin, to boot servers."""

    def __init__(self, runtime: Mapping[str, Any]) -> None:
        self.url = runtime["endpoints"]["compute"]
        admin = runtime["users"][constants.ADMIN_USER]
        response = requests.post(
            runtime["endpoints"]["identity"] + "/v3/auth/tokens",
            json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": admin["name"], "password": admin["password"],
                    "domain": {"id": constants.DOMAIN_ID}}}},
                "scope": {"project": {"name": admin["project_name"],
                                      "domain": {"id": constants.DOMAIN_ID}}},
            }},
            timeout=REQUEST_TIMEOUT)
        if response.status_code != 201:
            raise exceptions.SandboxError(
                f"The sandbox refused the admin's password: "
                f"{_error_message(response)}")
        self._headers = {
            "X-Auth-Token": response.headers["X-Subject-Token"],
            "OpenStack-API-Version": f"compute {BOOT_MICROVERSION}",
        }

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; answer its JSON body (None if empty)."""
        try:
            response = requests.request(
                method, self.url + path, json=body, headers=self._headers,
                timeout=REQUEST_TIMEOUT)
        except requests.RequestException as error:
            raise exceptions.SandboxError(
                f"The sandbox's compute API does not answer: {error}"
            ) from error
        if response.status_code >= 400:
            error_class = (exceptions.InvalidInput
                           if response.status_code in (400, 404)
                           else exceptions.SandboxError)
            raise error_class(
                f"{method} {path} answered {response.status_code}: "
                f"{_error_message(response)}")
        return response.json() if response.content else None

    def wait_for_status(self, server_id: str, wanted: str,
                        deadline: float) -> dict[str, Any]:
        """Poll the server until it has status ``wanted``.

        :raises SandboxError: it went to ERROR, or the deadline passed
        """
        while True:
            server = self.request("GET", f"/servers/{server_id}")["server"]
            if server["status"] == wanted:
                return {"id": server["id"], "name": server["name"],
                        "host": server.get("OS-EXT-SRV-ATTR:host"),
                        "status": server["status"]}
            if server["status"] == "ERROR":
                fault = server.get("fault", {}).get("message", "no fault")
                raise exceptions.SandboxError(
                    f"Server {server_id} went to ERROR: {fault}")
            if time.monotonic() > deadline:
                raise exceptions.SandboxError(
                    f"Server {server_id} is {server['status']}, not "
                    f"{wanted}, after waiting.")
            time.sleep(_POLL_INTERVAL)


def _check_start_options(computes: int, live_migration_duration: float,
                         cold_migration_delay: float, token_ttl: float,
                         host_vcpus: int, host_ram_mb: int,
                         host_disk_gb: int,
                         max_concurrent_live_migrations: int) -> None:
    problems = []
    if computes < 1:
        problems.append("computes must be at least 1")
    if live_migration_duration < 0 or cold_migration_delay < 0:
        problems.append("durations and delays must not be negative")
    if token_ttl < 1:
        problems.append("token_ttl must be at least 1 second")
    if min(host_vcpus, host_ram_mb, host_disk_gb) < 1:
        problems.append("host capacities must be at least 1")
    if max_concurrent_live_migrations < 1:
        problems.append("max_concurrent_live_migrations must be at least 1")
    if problems:
        raise exceptions.InvalidInput("; ".join(problems) + ".")


def _flavor_id(flavors: list[dict[str, Any]], wanted: str) -> str:
    for flavor in flavors:
        if wanted in (flavor["name"], flavor["id"]):
            return str(flavor["id"])
    names = ", ".join(flavor["name"] for flavor in flavors)
    raise exceptions.InvalidInput(
        f"No flavor {wanted!r}; the flavors are {names}.")


def _interpreter(python: str) -> str:
    """The absolute path of the interpreter ``python`` names.

    :raises InvalidInput: no executable file there (nor on the PATH, for a
        bare name)
    """
    if os.sep in python:
        executable = os.path.isfile(python) and os.access(python, os.X_OK)
        found = python if executable else None
    else:
        found = shutil.which(python)
    if found is None:
        raise exceptions.InvalidInput(
            f"No Python interpreter at {python!r}: give the path of one "
            "that has Nova installed (e.g. VENV/bin/python).")
    # Not resolved further: a virtualenv's python is a symbolic link, and
    # only its own path gives the virtualenv's packages.
    return os.path.abspath(found)


def _server_environment(
        state: statefiles.StateDir | None = None) -> dict[str, str]:
    """The server's environment: Nova in threading mode (the server drops
    that for a Nova that runs only with eventlet), and this very copy of
    nova_migrate_flows importable.

    :param state: given when the server runs with another interpreter: it
        then finds the package in a directory of the state directory that
        holds nothing else (a link to the package), rather than in the
        directory the package was installed in, whose other packages (this
        interpreter's) would shadow its own.
    """
    environment = dict(os.environ)
    environment[constants.NOVA_THREADING_ENV] = "1"
    # Fewer malloc arenas: Nova's many short-lived threads otherwise make
    # the resident memory creep.
    environment.setdefault("MALLOC_ARENA_MAX", "2")
    package = os.path.dirname(os.path.abspath(nova_migrate_flows.__file__))
    if state is None:
        source = os.path.dirname(package)
    else:
        source = _package_link(state, package)
    paths = [source] + [path for path in environment.get(
        "PYTHONPATH", "").split(os.pathsep) if path]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def _package_link(state: statefiles.StateDir, package: str) -> str:
    """A directory holding only a link to ``package``; answer its path."""
    directory = state.python_path
    os.makedirs(directory, exist_ok=True)
    link = os.path.join(directory, os.path.basename(package))
    if os.path.islink(link) and os.readlink(link) == package:
        return directory
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(package, link)
    return directory


def _wait_until_ready(state: statefiles.StateDir,
                      process: subprocess.Popen[bytes],
                      timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise exceptions.SandboxError(
                f"The sandbox server exited with {process.returncode} while "
                f"starting. The end of {state.log_file}:\n{_log_tail(state)}")
        runtime = statefiles.read_runtime(state)
        if runtime is not None and runtime.get("pid") == process.pid:
            try:
                if SandboxClient(state.path).ready():
                    # Read again: the server adds what it learnt while
                    # building the cloud before it says it is ready.
                    return statefiles.read_runtime(state) or runtime
            except exceptions.SandboxError:
                LOG.debug("The sandbox does not answer yet")
        time.sleep(_POLL_INTERVAL)
    raise exceptions.SandboxError(
        f"The sandbox was not ready after {timeout:.0f} s. The end of "
        f"{state.log_file}:\n{_log_tail(state)}")


def _running_runtime(state: statefiles.StateDir) -> dict[str, Any]:
    runtime = statefiles.read_runtime(state)
    if runtime is None or not _is_sandbox(int(runtime["pid"])):
        raise exceptions.SandboxError(f"No sandbox runs in {state.path}.")
    return runtime


def _is_sandbox(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) sandbox server process."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            process_state = stream.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            command = stream.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return process_state != "Z" and SERVER_MODULE.encode() in command


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_sandbox(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _signal_group(pid: int, signum: int) -> None:
    """Signal the server's process group (its own session)."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        LOG.debug("Process group %d is gone already", pid)


def _kill(pid: int) -> None:
    """Kill what is left of the server's process group; reap the server."""
    _signal_group(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait()
    _wait_gone(pid, 10.0)


def _log_tail(state: statefiles.StateDir) -> str:
    try:
        with open(state.log_file, encoding="utf-8", errors="replace") as log:
            lines = log.readlines()
    except FileNotFoundError:
        return "(no log)"
    return "".join(lines[-_LOG_TAIL_LINES:])


def _error_message(response: requests.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(document, dict):
        for key in ("error", "badRequest", "itemNotFound",
                    "conflictingRequest", "forbidden", "computeFault"):
            value = document.get(key)
            if isinstance(value, dict):
                return str(value.get("message", value))
            if value is not None:
                return str(value)
    return str(document)[:500]
