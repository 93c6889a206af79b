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
"""A whole Nova cloud in one process, built from Nova's own test fixtures.

:class:`SandboxCloud` assembles what ``nova.test.TestCase`` and
``ProviderUsageBaseTestCase`` assemble for Nova's functional tests, minus
the test-only poisons: SQLite databases (API, cell0, cell1; see
:mod:`.databases`), the
``fake://`` oslo.messaging transport, Placement in the same process, Nova's
fake Glance, Neutron and Cinder, Nova's real policy, a conductor, a
scheduler and N nova-compute services running :mod:`.driver`. It hands
out Nova's compute API and Placement as WSGI applications; the gateway
serves them over HTTP.

It runs Nova 34 in native-threading mode and older releases (Nova 26,
Zed) monkey-patched by eventlet; :mod:`.server` sets the mode before this
module is imported. What only one of them has is used only where present:
Nova 34's process-wide executors (``nova.thread_pool_factory``, see
:mod:`.executors`), ``[api] response_validation``, compute node UUIDs
(``ComputeNodeIdFixture``) and the ``compute-alt`` RPC topic.

This module imports Nova: only the sandbox server process may import it.
"""

import contextlib
import copy
import dataclasses
import json
import os
import sysconfig
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import fixtures

# Nova 26's nova.api.wsgi uses webob.dec without importing it.
import webob.dec
from nova import context as nova_context
from nova import exception, objects, servicegroup
from nova import service as nova_service
from nova import version as nova_version
from nova.api import wsgi as nova_wsgi
from nova.api.openstack import wsgi_app
from nova.compute import rpcapi as compute_rpcapi
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import fixtures as func_fixtures
from oslo_config import cfg
from oslo_log import log as logging
from oslo_messaging import opts as oslo_messaging_opts
from oslo_utils import uuidutils
from placement import deploy as placement_deploy

from nova_migrate_flows.sandbox import constants, control_api, databases
from nova_migrate_flows.sandbox import driver as sandbox_driver

try:
    from nova import thread_pool_factory
except ImportError:  # Nova 26 (eventlet): an executor per compute manager
    thread_pool_factory = None

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

#: Seconds between two state reports of a service, and the silence after
#: which Nova calls it down: small, so a stopped compute is down quickly.
REPORT_INTERVAL = 1
SERVICE_DOWN_TIME = 4

#: ``(name, flavorid, memory_mb, vcpus, root_gb, ephemeral_gb, swap_mb)``
FLAVORS = (
    ("m1.tiny", "1", 512, 1, 1, 0, 0),
    ("m1.small", "2", 2048, 1, 20, 0, 0),
    ("m1.medium", "3", 4096, 2, 40, 0, 0),
    ("m1.large", "4", 8192, 4, 80, 0, 0),
    ("m1.xlarge", "5", 16384, 8, 160, 0, 0),
    ("m1.ephemeral", "6", 2048, 1, 10, 10, 1024),
)


@dataclasses.dataclass(frozen=True)
class CloudOptions:
    """How to build the cloud."""

    computes: int = constants.DEFAULT_COMPUTES
    work_dir: str = "."
    live_migration_duration: float = constants.DEFAULT_LIVE_MIGRATION_DURATION
    cold_migration_delay: float = constants.DEFAULT_COLD_MIGRATION_DELAY
    host_vcpus: int = constants.DEFAULT_HOST_VCPUS
    host_ram_mb: int = constants.DEFAULT_HOST_RAM_MB
    host_disk_gb: int = constants.DEFAULT_HOST_DISK_GB
    max_concurrent_live_migrations: int = (
        constants.DEFAULT_MAX_CONCURRENT_LIVE_MIGRATIONS)
    #: The oslo.messaging transport Nova's versioned notifications go to
    #: (None: Nova emits none).
    notifications: str | None = None


class SandboxCloud(fixtures.Fixture):
    """The cloud; ``useFixture`` it, or ``setUp()`` and ``cleanUp()``.

    Nova's service fixtures expect a test case: this class offers the bits
    of one they use (:meth:`flags`, :meth:`stub_out`, :meth:`id`).
    """

    def __init__(self, options: CloudOptions) -> None:
        super().__init__()
        self.options = options
        self.hosts = constants.compute_hosts(options.computes)
        self.compute_app: Any = None
        self.placement_app: Any = None
        self.glance: Any = None
        self._placement: Any = None
        self._databases: Any = None
        self._computes: dict[str, Any] = {}
        self._running: set[str] = set()
        self._cell_mappings: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- what Nova's fixtures expect of a test case ----------------------

    def id(self) -> str:
        """The name Nova's fixtures give threads and notifiers."""
        return "nova-migrate-flows-sandbox"

    def flags(self, **kwargs: Any) -> None:
        """Override configuration options until the cloud is cleaned up."""
        group = kwargs.pop("group", None)
        self.useFixture(nova_fixtures.ConfPatcher(group=group, **kwargs))

    def stub_out(self, old: str, new: Any) -> None:
        """Replace ``old`` (a dotted name) until the cloud is cleaned up."""
        self.useFixture(fixtures.MonkeyPatch(old, new))

    # -- building -----------------------------------------------------------

    def _setUp(self) -> None:
        sandbox_driver.register()
        self._configure()
        # Nova reaches Placement through an openstacksdk adapter: make it
        # talk to the in-process Placement without a service catalog.
        self.useFixture(nova_fixtures.OpenStackSDKFixture())
        self.useFixture(nova_fixtures.RPCFixture())
        self._databases = self.useFixture(databases.SandboxDatabases(
            os.path.join(self.options.work_dir, "db"), self.flags))
        self._map_cells()
        self.useFixture(nova_fixtures.AllServicesCurrent())
        if hasattr(nova_fixtures, "ComputeNodeIdFixture"):  # Nova >= 27
            self.useFixture(nova_fixtures.ComputeNodeIdFixture())
        self.useFixture(nova_fixtures.RealPolicyFixture())
        self.useFixture(nova_fixtures.NeutronFixture(self))
        self.glance = self.useFixture(nova_fixtures.GlanceFixture(self))
        self.useFixture(nova_fixtures.CinderFixture(self))
        self._placement = self.useFixture(func_fixtures.PlacementFixture())
        self.useFixture(databases.KeepOpen(
            self._placement.conf_fixture.conf.placement_database.connection))
        self.placement_app = placement_deploy.loadapp(
            self._placement.conf_fixture.conf)
        if thread_pool_factory is not None:
            self._use_per_host_executors()
        # A (re)started service reports its state after one interval, not
        # after Nova's fixed five seconds.
        self.stub_out("nova.servicegroup.api.INITIAL_REPORTING_DELAY",
                      REPORT_INTERVAL)
        self._create_flavors()
        self._create_image()
        self._load_compute_api()
        self._start_service("conductor")
        self._start_service("scheduler")
        for host in self.hosts:
            self._start_compute(host)
        self.addCleanup(self._stop_computes)

    def _use_per_host_executors(self) -> None:
        """Nova 34: one live-migration executor per host, as in a real
        cloud (older releases give each compute manager its own)."""
        from nova_migrate_flows.sandbox import executors

        self.useFixture(executors.PerHostLiveMigrationExecutors())
        # A compute service that stops must not shut down the executors of
        # the whole process (the other services still use them).
        self.stub_out("nova.thread_pool_factory.shutdown_all_executors",
                      lambda: None)
        self.addCleanup(thread_pool_factory.reset_all_executors)

    def _configure(self) -> None:
        lock_path = os.path.join(self.options.work_dir, "locks")
        os.makedirs(lock_path, exist_ok=True)
        self.useFixture(nova_fixtures.ConfFixture(CONF))
        sandbox_driver.register_opts(CONF)
        self.flags(lock_path=lock_path, group="oslo_concurrency")
        self.flags(
            host=constants.CONTROLLER_HOST,
            compute_driver="sandbox.SandboxDriver",
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            max_concurrent_live_migrations=(
                self.options.max_concurrent_live_migrations),
            tempdir=self.options.work_dir,
        )
        self.flags(api_paste_config=_api_paste_config(), group="wsgi")
        if _has_option("api", "response_validation"):  # Nova >= 30
            # Production's default: a response that breaks Nova's schema is
            # logged, not turned into a 500.
            self.flags(response_validation="warn", group="api")
        self.flags(instances=-1, cores=-1, ram=-1, group="quota")
        # Every host has PCI devices a flavor can ask for by alias (and
        # vGPUs, see the driver): servers Nova does not live-migrate.
        self.flags(
            alias=[json.dumps({
                "name": constants.PCI_ALIAS,
                "vendor_id": constants.PCI_VENDOR_ID,
                "product_id": constants.PCI_PRODUCT_ID,
                "device_type": "type-PCI",
            })],
            device_spec=[json.dumps({
                "vendor_id": constants.PCI_VENDOR_ID,
                "product_id": constants.PCI_PRODUCT_ID,
            })],
            group="pci",
        )
        for group, options in oslo_messaging_opts.list_opts():
            if group == "oslo_messaging_notifications":
                CONF.register_opts(options, group=group)
        if self.options.notifications:
            # Nova's versioned notifications, on the bus named (RPC stays
            # in this process).
            self.flags(driver=["messagingv2"],
                       transport_url=self.options.notifications,
                       group="oslo_messaging_notifications")
            self.flags(notification_format="versioned",
                       group="notifications")
        else:
            # Nobody listens to notifications: build none, keep none.
            self.flags(driver=["noop"],
                       group="oslo_messaging_notifications")
            self.flags(notification_format="unversioned",
                       group="notifications")
        self.flags(
            live_migration_duration=self.options.live_migration_duration,
            cold_migration_delay=self.options.cold_migration_delay,
            host_vcpus=self.options.host_vcpus,
            host_ram_mb=self.options.host_ram_mb,
            host_disk_gb=self.options.host_disk_gb,
            group=sandbox_driver.SANDBOX_GROUP,
        )

    def _map_cells(self) -> None:
        """Map cell0 and cell1 to their databases, as ``nova-manage cell_v2
        map_cell0`` and ``create_cell`` do."""
        ctxt = nova_context.get_admin_context()
        uuids = {"cell0": objects.CellMapping.CELL0_UUID,
                 "cell1": uuidutils.generate_uuid()}
        for name in databases.CELL_NAMES:
            mapping = objects.CellMapping(
                context=ctxt, uuid=uuids[name], name=name,
                transport_url="fake://nowhere/",
                database_connection=self._databases.urls[name])
            mapping.create()
            self._cell_mappings[name] = mapping

    def _create_flavors(self) -> None:
        ctxt = nova_context.get_admin_context()
        for name, flavorid, ram, vcpus, root, ephemeral, swap in FLAVORS:
            objects.Flavor(
                context=ctxt, name=name, flavorid=flavorid, memory_mb=ram,
                vcpus=vcpus, root_gb=root, ephemeral_gb=ephemeral, swap=swap,
                rxtx_factor=1.0, disabled=False, is_public=True,
            ).create()

    def _create_image(self) -> None:
        image = copy.deepcopy(nova_fixtures.GlanceFixture.image1)
        image.update(id=constants.IMAGE_ID, name=constants.IMAGE_NAME,
                     tags=[])
        self.glance.create(None, image)

    def _load_compute_api(self) -> None:
        """Load Nova's osapi_compute WSGI app with a stand-in authtoken.

        The gateway in front validates tokens and sets the headers
        keystonemiddleware would set; Nova's own ``NovaKeystoneContext``
        builds the request context from them.
        """
        self.useFixture(fixtures.MockPatch(
            "keystonemiddleware.auth_token.filter_factory",
            return_value=lambda app: app))
        wsgi_app._setup_service(constants.CONTROLLER_HOST, "osapi_compute")
        self.compute_app = nova_wsgi.Loader().load_app("osapi_compute")

    def _start_service(self, name: str) -> Any:
        svc = self.useFixture(nova_fixtures.ServiceFixture(
            name, host=constants.CONTROLLER_HOST))
        return svc.service

    # -- compute services ---------------------------------------------------

    def _start_compute(self, host: str, driver: Any = None) -> None:
        """Start nova-compute on ``host``, reusing ``driver`` on a restart.

        As in Nova's ``restart_compute_service``, a restarted service gets
        a new manager but the old driver, which still knows the guests that
        ran on the host (so Nova can clean up evacuated ones). The service
        needs no cell in its context: cell1's database is the default one,
        as on a real compute host.
        """
        with contextlib.ExitStack() as stack:
            stack.enter_context(_conf_host(host))
            if driver is not None:
                stack.enter_context(mock.patch(
                    "nova.virt.driver.load_compute_driver",
                    return_value=driver))
            topics = {"topic": "compute"}
            if hasattr(compute_rpcapi, "RPC_TOPIC_ALT"):  # Nova >= 31
                topics["topic_alt"] = compute_rpcapi.RPC_TOPIC_ALT
            compute = nova_service.Service.create(
                host=host, binary="nova-compute", **topics)
            compute.start()
        if driver is None:
            self._map_host(host)
        self._computes[host] = compute
        self._running.add(host)
        LOG.info("Started nova-compute on %s", host)

    def _map_host(self, host: str) -> None:
        """Map a new host to cell1, as ``nova-manage discover_hosts`` does."""
        cell = self._cell_mappings["cell1"]
        ctxt = nova_context.get_admin_context()
        mapping = objects.HostMapping(context=ctxt, host=host,
                                      cell_mapping=cell)
        mapping.create()
        with nova_context.target_cell(ctxt, cell) as cctxt:
            # By host: Nova 26 does not record a compute node's service.
            for node in objects.ComputeNodeList.get_all_by_host(cctxt, host):
                node.mapped = 1
                node.save()

    def _stop_computes(self) -> None:
        """Stop every running compute service, all at once.

        Each stop waits about a second for its RPC servers; idle executor
        workers are told to notice a shutdown faster than once a second.
        """
        if thread_pool_factory is not None:
            from futurist import _thread as futurist_thread

            futurist_thread.ThreadWorker.MAX_IDLE_FOR = 0.05  # type: ignore[assignment]
        stoppers = [threading.Thread(target=self.stop_compute, args=(host,))
                    for host in self.hosts if host in self._running]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def _compute(self, host: str) -> Any:
        try:
            return self._computes[host]
        except KeyError:
            raise control_api.UnknownHost(host) from None

    def compute_running(self, host: str) -> bool:
        """Whether the nova-compute service of ``host`` runs."""
        self._compute(host)
        return host in self._running

    def stop_compute(self, host: str) -> bool:
        """Stop nova-compute on ``host``; False if it was not running.

        The service stops reporting: Nova calls it down after
        ``SERVICE_DOWN_TIME`` seconds, as when the host fails.
        """
        with self._lock:
            if not self.compute_running(host):
                return False
            self._running.discard(host)
            self._compute(host).stop()
        LOG.info("Stopped nova-compute on %s", host)
        return True

    def start_compute(self, host: str) -> bool:
        """Start nova-compute on ``host`` again; False if it was running."""
        with self._lock:
            if self.compute_running(host):
                return False
            self._start_compute(host, driver=self._compute(host).driver)
        return True

    def driver(self, host: str) -> sandbox_driver.SandboxDriver:
        """The virt driver of ``host``."""
        driver: sandbox_driver.SandboxDriver = self._compute(host).driver
        return driver

    def set_capacity(self, host: str, vcpus: int | None = None,
                     memory_mb: int | None = None,
                     local_gb: int | None = None) -> dict[str, int]:
        """Change a host's capacity and push it to Placement now."""
        compute = self._compute(host)
        compute.driver.set_capacity(vcpus, memory_mb, local_gb)
        if self.compute_running(host):
            compute.manager.update_available_resource(
                nova_context.get_admin_context())
        return self.driver(host).capacity()

    def service_states(self) -> dict[str, dict[str, Any]]:
        """``{host: {"state": "up"|"down", "status": ..., "running": ..}}``.

        Disabled services are included (Nova leaves them out by default).
        """
        ctxt = nova_context.get_admin_context()
        group = servicegroup.API()
        states = {}
        for svc in objects.ServiceList.get_by_binary(
                ctxt, "nova-compute", include_disabled=True):
            states[svc.host] = {
                "state": "up" if group.service_is_up(svc) else "down",
                "status": "disabled" if svc.disabled else "enabled",
                "forced_down": svc.forced_down,
                "running": svc.host in self._running,
            }
        return states

    def provider_hosts(self) -> set[str]:
        """The hosts whose resource provider exists in Placement."""
        response = self._placement.api.get("/resource_providers")
        return {provider["name"]
                for provider in response.body["resource_providers"]}

    def servers_per_host(self) -> dict[str, int]:
        """How many servers each compute host has (all projects)."""
        ctxt = nova_context.get_admin_context()
        counts = dict.fromkeys(self.hosts, 0)
        with nova_context.target_cell(
                ctxt, self._cell_mappings["cell1"]) as cctxt:
            for instance in objects.InstanceList.get_by_filters(
                    cctxt, {"deleted": False}, expected_attrs=[]):
                if instance.host in counts:
                    counts[instance.host] += 1
        return counts

    def ready(self) -> tuple[bool, list[str]]:
        """Whether every compute is up and has its resource provider."""
        states = self.service_states()
        providers = self.provider_hosts()
        waiting = [f"nova-compute on {host} to report"
                   for host in self.hosts
                   if states.get(host, {}).get("state") != "up"]
        waiting += [f"the resource provider of {host}"
                    for host in self.hosts if host not in providers]
        return not waiting, waiting

    def defaults(self) -> dict[str, Any]:
        """The driver's sandbox-wide defaults."""
        options = CONF[sandbox_driver.SANDBOX_GROUP]
        return {
            "live_migration_duration": options.live_migration_duration,
            "live_migration_result": options.live_migration_result,
            "cold_migration_delay": options.cold_migration_delay,
        }

    def set_defaults(self, **values: Any) -> dict[str, Any]:
        """Change some of the driver's defaults; answer all of them."""
        for name, value in values.items():
            CONF.set_override(name, value, group=sandbox_driver.SANDBOX_GROUP)
        return self.defaults()

    def nova_versions(self) -> dict[str, str]:
        """The Nova release and the compute API's microversions.

        ``{"release", "min_microversion", "max_microversion"}``; the
        microversions are those of the version document the API serves
        (``GET /v2.1``).
        """
        request = webob.Request.blank(constants.COMPUTE_VERSION_PATH)
        response = request.get_response(self.compute_app)
        if response.status_int != 200:
            raise RuntimeError(
                f"GET {constants.COMPUTE_VERSION_PATH} answered "
                f"{response.status}")
        document = json.loads(response.body)["version"]
        return {
            "release": str(nova_version.version_string()),
            "min_microversion": str(document["min_version"]),
            "max_microversion": str(document["version"]),
        }

    def status(self) -> dict[str, Any]:
        """Hosts (service state, capacity, servers), flavors, image."""
        states = self.service_states()
        servers = self.servers_per_host()
        hosts = {
            host: dict(states.get(host) or self._no_service(host),
                       capacity=self.driver(host).capacity(),
                       servers=servers[host])
            for host in self.hosts
        }
        return {
            "hosts": hosts,
            "flavors": self.flavors(),
            "images": [{"id": constants.IMAGE_ID,
                        "name": constants.IMAGE_NAME}],
            "network": {"id": self.network_id(), "name": "private"},
            "defaults": self.defaults(),
        }

    def _no_service(self, host: str) -> dict[str, Any]:
        """What :meth:`status` says of a host without a service record."""
        return {"state": "unknown", "status": "unknown", "forced_down": None,
                "running": host in self._running}

    def flavors(self) -> list[dict[str, Any]]:
        """The flavors, as plain dicts."""
        return [
            {"name": name, "id": flavorid, "ram": ram, "vcpus": vcpus,
             "disk": root, "ephemeral": ephemeral, "swap": swap}
            for name, flavorid, ram, vcpus, root, ephemeral, swap in FLAVORS
        ]

    @staticmethod
    def network_id() -> str:
        """The one tenant network of the fake Neutron."""
        return str(nova_fixtures.NeutronFixture.network_1["id"])


@contextlib.contextmanager
def _conf_host(host: str) -> Iterator[None]:
    """Set ``CONF.host`` while a compute service is built and started."""
    CONF.set_override("host", host)
    try:
        yield
    finally:
        CONF.set_override("host", constants.CONTROLLER_HOST)


def _has_option(group: str, name: str) -> bool:
    """Whether this Nova registers the option ``[group] name``."""
    try:
        CONF[group][name]
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return False
    return True


def _api_paste_config() -> str:
    """Where the nova wheel installed ``api-paste.ini``.

    Nova looks for it under its own state path, where the wheel does not
    put it.
    """
    path = os.path.join(sysconfig.get_path("data"), "etc", "nova",
                        "api-paste.ini")
    if not os.path.exists(path):
        raise exception.ConfigNotFound(path=path)
    return path
