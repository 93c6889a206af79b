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
"""The sandbox server process: one Nova cloud, served on 127.0.0.1.

Run as ``python -m nova_migrate_flows.sandbox.server --state-dir DIR
--computes N [options]`` (``control.start`` does it, detached). The
process listens on a free port at once, writes ``DIR/sandbox.json``,
builds the cloud and then answers ``GET /sandbox/ready`` with 200. It
stops on SIGTERM or SIGINT, on ``POST /sandbox/shutdown``, or when the
process given with ``--watch-pid`` is gone. SIGUSR1 dumps the stacks of
all its threads into the log.

Nova is imported only once its concurrency mode is set: a Nova that has
native threading (``nova.thread_pool_factory``, Nova 34) runs with native
threads behind ``wsgiref``; an older one runs monkey-patched by eventlet,
as its own services and functional tests do, behind eventlet's WSGI
server. The interpreter may be another one than the tool's (``sandbox
start --python``, e.g. a Python 3.10 virtualenv with an older Nova): this
module and what it imports must run there, on Python 3.10 too.
Nothing else in nova-migrate-flows imports this module.
"""

import argparse
import datetime
import faulthandler
import importlib.util
import logging
import os
import platform
import secrets
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from nova_migrate_flows.sandbox import (
    constants,
    control_api,
    gateway,
    httpserver,
    identity,
    statefiles,
)
from nova_migrate_flows.sandbox import stats as request_stats

LOG = logging.getLogger(__name__)

#: Seconds the cloud may take to clean up before the process just exits.
CLEANUP_TIMEOUT = 20.0

#: How Nova runs here: native threads, or monkey-patched by eventlet.
THREADING = "threading"
EVENTLET = "eventlet"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The server's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m nova_migrate_flows.sandbox.server",
        description="Run a sandbox Nova cloud on 127.0.0.1.")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--computes", type=int,
                        default=constants.DEFAULT_COMPUTES)
    parser.add_argument("--port", type=int, default=0,
                        help="Port to listen on (default: any free port).")
    parser.add_argument("--live-migration-duration", type=float,
                        default=constants.DEFAULT_LIVE_MIGRATION_DURATION)
    parser.add_argument("--cold-migration-delay", type=float,
                        default=constants.DEFAULT_COLD_MIGRATION_DELAY)
    parser.add_argument("--token-ttl", type=float,
                        default=constants.DEFAULT_TOKEN_TTL)
    parser.add_argument("--host-vcpus", type=int,
                        default=constants.DEFAULT_HOST_VCPUS)
    parser.add_argument("--host-ram-mb", type=int,
                        default=constants.DEFAULT_HOST_RAM_MB)
    parser.add_argument("--host-disk-gb", type=int,
                        default=constants.DEFAULT_HOST_DISK_GB)
    parser.add_argument(
        "--max-concurrent-live-migrations", type=int,
        default=constants.DEFAULT_MAX_CONCURRENT_LIVE_MIGRATIONS)
    parser.add_argument(
        "--notifications", default=None, metavar="TRANSPORT_URL",
        help="Emit Nova's versioned notifications to this oslo.messaging "
        "transport (e.g. rabbit://guest:guest@127.0.0.1:5672/).")
    parser.add_argument("--watch-pid", type=int, default=None,
                        help="Stop when this process is gone.")
    args = parser.parse_args(argv)
    if args.computes < 1:
        parser.error("--computes must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until it is told to stop; answer the exit code."""
    args = parse_args(argv)
    state = statefiles.StateDir.at(args.state_dir)
    os.makedirs(state.work_dir, exist_ok=True)
    # Nova's fixtures put the SQLite databases in temporary files.
    tempfile.tempdir = state.work_dir
    concurrency = _set_up_concurrency()
    # SIGUSR1 prints every thread's stack into the log, for a hang.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    admin, demo, app_credential = identity.make_users()
    store = identity.TokenStore([admin, demo], [app_credential],
                                args.token_ttl)
    stats = request_stats.RequestStats()
    control_secret = secrets.token_urlsafe(24)
    control = control_api.ControlApp(control_secret, store, stats,
                                     shutdown=stopping.set)
    server: httpserver.Server
    if concurrency == THREADING:
        server = httpserver.make_server(_unavailable, args.port)
    else:
        server = httpserver.make_green_server(_unavailable, args.port)
    base_url = f"http://{httpserver.LOOPBACK}:{server.server_port}"
    endpoints = _endpoints(base_url)
    identity_app = identity.IdentityApp(store, {
        "compute": endpoints["compute"],
        "placement": endpoints["placement"],
        "identity": endpoints["identity"],
    }, endpoints["identity"])
    front = gateway.Gateway(identity_app, control, stats,
                            endpoints["identity"])
    server.set_app(front)
    serving = threading.Thread(target=server.serve_forever,
                               name="sandbox-http", daemon=True)
    serving.start()
    document = _runtime_document(args, state, server.server_port,
                                 endpoints, store, control_secret)
    statefiles.write_runtime(state, document)
    try:
        return _run(args, state, front, control, stopping,
                    dict(document, nova={"concurrency": concurrency}))
    finally:
        server.shutdown()
        server.server_close()
        runtime = statefiles.read_runtime(state)
        if runtime is not None and runtime.get("pid") == os.getpid():
            statefiles.remove_runtime(state)
        LOG.info("Sandbox stopped")


def _run(args: argparse.Namespace, state: statefiles.StateDir,
         front: gateway.Gateway, control: control_api.ControlApp,
         stopping: threading.Event, runtime: dict[str, Any]) -> int:
    """Build the cloud, serve it until told to stop, clean it up.

    Once the cloud is built, ``sandbox.json`` also tells which Nova runs
    (``runtime["nova"]``), before the cloud says it is ready.
    """
    # Imported here, after _set_up_concurrency(): importing Nova earlier
    # would monkey-patch the process with eventlet, or fail to.
    from nova_migrate_flows.sandbox import cloud as sandbox_cloud

    started = time.monotonic()
    the_cloud = sandbox_cloud.SandboxCloud(sandbox_cloud.CloudOptions(
        computes=args.computes,
        work_dir=state.work_dir,
        live_migration_duration=args.live_migration_duration,
        cold_migration_delay=args.cold_migration_delay,
        host_vcpus=args.host_vcpus,
        host_ram_mb=args.host_ram_mb,
        host_disk_gb=args.host_disk_gb,
        max_concurrent_live_migrations=args.max_concurrent_live_migrations,
        notifications=args.notifications,
    ))
    try:
        the_cloud.setUp()
    except Exception:
        # Fixture set-up errors hide their cause in nested details: print
        # the whole thing for the log.
        traceback.print_exc()
        LOG.error("The sandbox cloud failed to start")
        return 1
    try:
        runtime["nova"].update(the_cloud.nova_versions())
        statefiles.write_runtime(state, runtime)
        front.attach_cloud(the_cloud.compute_app, the_cloud.placement_app)
        control.backend = the_cloud
        LOG.info("Sandbox cloud with %d computes built in %.1f s: Nova %s "
                 "(%s), compute API %s to %s", args.computes,
                 time.monotonic() - started, runtime["nova"]["release"],
                 runtime["nova"]["concurrency"],
                 runtime["nova"]["min_microversion"],
                 runtime["nova"]["max_microversion"])
        while not stopping.wait(1.0):
            if args.watch_pid and not _alive(args.watch_pid):
                LOG.info("Process %d is gone: stopping", args.watch_pid)
                break
    finally:
        _clean_up(the_cloud)
    return 0


def _clean_up(the_cloud: Any) -> None:
    """Clean the cloud up, or exit anyway once CLEANUP_TIMEOUT is over."""
    watchdog = threading.Timer(CLEANUP_TIMEOUT, _exit_now)
    watchdog.daemon = True
    watchdog.start()
    try:
        the_cloud.cleanUp()
    except Exception:
        LOG.exception("Cleaning the sandbox cloud up failed")
    finally:
        watchdog.cancel()


def _exit_now() -> None:
    LOG.error("Cleanup takes longer than %.0f s: exiting", CLEANUP_TIMEOUT)
    logging.shutdown()
    os._exit(1)


def _set_up_concurrency() -> str:
    """Set how Nova runs (answer :data:`THREADING` or :data:`EVENTLET`),
    and set up logging.

    A Nova with ``nova.thread_pool_factory`` (Nova 34) runs with native
    threads. Older releases run monkey-patched by eventlet, the only way
    they run: Nova 26's ``nova.monkey_patch`` patches the process when it
    is imported, unless the environment says not to (which
    ``control.start`` does, for Nova 34); a release whose module patches
    only when asked (``patch()``) is asked. This must run before anything
    imports Nova (finding the module imports only the empty ``nova``
    package). Nova 34 and Nova 26 are the releases this was tried with.
    """
    if importlib.util.find_spec("nova.thread_pool_factory") is not None:
        concurrency = THREADING
        os.environ[constants.NOVA_THREADING_ENV] = "1"
        from nova import monkey_patch
        monkey_patch.patch(backend="threading")
    else:
        concurrency = EVENTLET
        os.environ.pop(constants.NOVA_THREADING_ENV, None)
        # eventlet's green DNS would import requests and urllib3 before
        # the process is patched; everything here is on 127.0.0.1.
        os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
        from nova import monkey_patch  # Nova 26 patches here
        if hasattr(monkey_patch, "patch"):
            monkey_patch.patch(backend="eventlet")
    from oslo_config import cfg
    from oslo_log import log as oslo_logging
    oslo_logging.register_options(cfg.CONF)
    cfg.CONF.set_default("use_stderr", True)
    oslo_logging.setup(cfg.CONF, "nova")
    LOG.info("Nova runs with %s on Python %s (%s)", concurrency,
             platform.python_version(), sys.executable)
    return concurrency


def _endpoints(base_url: str) -> dict[str, str]:
    return {
        "identity": base_url + constants.PREFIX_IDENTITY,
        "compute": (base_url + constants.PREFIX_COMPUTE
                    + constants.COMPUTE_VERSION_PATH),
        "placement": base_url + constants.PREFIX_PLACEMENT,
        "control": base_url + constants.PREFIX_CONTROL,
    }


def _runtime_document(args: argparse.Namespace, state: statefiles.StateDir,
                      port: int, endpoints: dict[str, str],
                      store: identity.TokenStore,
                      control_secret: str) -> dict[str, Any]:
    """What ``sandbox.json`` says about this server."""
    (app_credential,) = store.app_credentials.values()
    return {
        "pid": os.getpid(),
        "port": port,
        # This may run on Python 3.10, which has no datetime.UTC.
        "started_at": datetime.datetime.now(
            datetime.timezone.utc).isoformat(),  # noqa: UP017
        "python": {"version": platform.python_version(),
                   "executable": sys.executable},
        "state_dir": state.path,
        "endpoints": endpoints,
        "hosts": constants.compute_hosts(args.computes),
        "users": {name: _user_document(user)
                  for name, user in store.users.items()},
        "application_credential": {
            "id": app_credential.id,
            "name": app_credential.name,
            "secret": app_credential.secret,
            "user": app_credential.user.name,
        },
        "control_secret": control_secret,
        "image": {"id": constants.IMAGE_ID, "name": constants.IMAGE_NAME},
        "options": {key: value for key, value in vars(args).items()
                    if key not in ("state_dir", "watch_pid", "port")},
    }


def _user_document(user: identity.User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "password": user.password,
        "project_id": user.project.id,
        "project_name": user.project.name,
        "roles": list(user.roles),
    }


def _unavailable(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Length", "0")])
    return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())
