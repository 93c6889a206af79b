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
"""The sandbox's virt driver: Nova's fake driver with realistic migrations.

Nova loads compute drivers only from ``nova.virt.<name>``, so
:func:`register` puts this module into ``sys.modules`` as
``nova.virt.sandbox`` and the sandbox sets ``compute_driver`` to
``sandbox.SandboxDriver``.

What a migration does is decided per server by its metadata (see
:mod:`nova_migrate_flows.sandbox.constants`), falling back to the
sandbox-wide defaults in the ``[sandbox]`` options of Nova's configuration,
which the control API changes at run time.

This module imports Nova: only the sandbox server process may import it.
"""

import datetime
import sys
import threading
import time
from typing import Any

import os_resource_classes as orc
import os_traits
from nova import exception
from nova.compute import utils as compute_utils
from nova.virt import fake
from oslo_config import cfg
from oslo_db import exception as db_exception
from oslo_log import log as logging
from oslo_serialization import jsonutils
from sqlalchemy import exc as sqla_exc

from nova_migrate_flows.sandbox import constants

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

SANDBOX_GROUP = "sandbox"
_MIB = 1024 * 1024
_GIB = 1024 * _MIB
#: Seconds between two progress reports of a running live migration.
_PROGRESS_INTERVAL = 0.25
#: Fraction of the memory a hanging live migration copies before it stalls.
_HANG_FRACTION = 0.5

_OPTS = [
    cfg.FloatOpt(
        "live_migration_duration",
        default=constants.DEFAULT_LIVE_MIGRATION_DURATION,
        min=0,
        help="Seconds a live migration runs, unless the server's metadata "
        "says otherwise.",
    ),
    cfg.StrOpt(
        "live_migration_result",
        default=constants.RESULT_SUCCESS,
        choices=[
            (constants.RESULT_SUCCESS, "The server moves to the target."),
            (constants.RESULT_FAIL, "The migration fails and rolls back."),
            (constants.RESULT_HANG, "The migration runs until aborted or "
             "forced to complete."),
        ],
        help="How a live migration ends, unless the server's metadata "
        "says otherwise.",
    ),
    cfg.FloatOpt(
        "cold_migration_delay",
        default=constants.DEFAULT_COLD_MIGRATION_DELAY,
        min=0,
        help="Seconds a cold migration or resize copies the disks, unless "
        "the server's metadata says otherwise.",
    ),
    cfg.IntOpt(
        "host_vcpus",
        default=constants.DEFAULT_HOST_VCPUS,
        min=1,
        help="VCPUs of each compute host when it starts.",
    ),
    cfg.IntOpt(
        "host_ram_mb",
        default=constants.DEFAULT_HOST_RAM_MB,
        min=1,
        help="Memory (MiB) of each compute host when it starts.",
    ),
    cfg.IntOpt(
        "host_disk_gb",
        default=constants.DEFAULT_HOST_DISK_GB,
        min=1,
        help="Local disk (GiB) of each compute host when it starts.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[sandbox]`` options of the driver on ``conf``."""
    conf.register_opts(_OPTS, group=SANDBOX_GROUP)


def register() -> None:
    """Make Nova find this driver as ``compute_driver=sandbox.SandboxDriver``.

    Nova imports ``nova.virt.`` + the configured module name.
    """
    sys.modules["nova.virt.sandbox"] = sys.modules[__name__]


class _LiveMigrationJob:
    """A live migration the driver is running, and what it was told to do.

    Nova calls :meth:`SandboxDriver.live_migration_abort` and
    :meth:`SandboxDriver.live_migration_force_complete` from other threads;
    they leave their request here and wake the migration up.
    """

    ABORT = "abort"
    COMPLETE = "complete"
    STOP = "stop"

    def __init__(self, aborts_to_lose: int = 0) -> None:
        self.request: str | None = None
        self.aborts_to_lose = aborts_to_lose
        self._wakeup = threading.Event()

    def ask(self, request: str) -> None:
        """Ask the running migration to abort, complete or just stop."""
        self.request = request
        self._wakeup.set()

    def wait(self, seconds: float) -> None:
        """Sleep for ``seconds`` or until something is asked."""
        self._wakeup.wait(seconds)


class SandboxDriver(fake.FakeDriver):
    """A fake hypervisor whose migrations take time, report progress and fail.

    * A live migration runs for a set duration, writing memory (and, when it
      copies the disks, disk) progress into the Migration record, then ends
      the way the server's metadata or the sandbox default says: it moves
      the server, fails (calling Nova's rollback, so the server stays on its
      source, and recording the reason in an instance-action event) or hangs
      until Nova aborts it or forces it to complete. It drops as many
      aborts as the server's metadata says, as a compute does with one that
      comes before its driver has a job to abort.
    * A cold migration or resize copies its disks for a set delay, then
      fails (Nova rolls it back) if the server's metadata says so; so do
      the revert of a resize and an evacuation's rebuild.
    * Every host has PCI devices (alias ``nmf-pci``) and vGPUs, for flavors
      that ask for them (servers Nova does not live-migrate).
    * The host's capacity is set at start and changes at run time
      (:meth:`set_capacity`).
    """

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        super().__init__(virtapi, read_only)
        self._jobs: dict[str, _LiveMigrationJob] = {}
        self._jobs_lock = threading.Lock()
        self._booted_at = time.time()
        self.set_capacity(
            CONF.sandbox.host_vcpus,
            CONF.sandbox.host_ram_mb,
            CONF.sandbox.host_disk_gb,
        )

    def set_capacity(
        self,
        vcpus: int | None = None,
        memory_mb: int | None = None,
        local_gb: int | None = None,
    ) -> None:
        """Change what this host has; the caller updates the resources.

        The new inventory reaches Placement the next time the resource
        tracker runs (``ComputeManager.update_available_resource``).
        """
        if vcpus is not None:
            self.vcpus = self.resources.vcpus = vcpus
        if memory_mb is not None:
            self.memory_mb = self.resources.memory_mb = memory_mb
        if local_gb is not None:
            self.local_gb = self.resources.local_gb = local_gb

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """The fake driver's resources, with the sandbox's PCI devices."""
        resources = super().get_available_resource(nodename)
        if resources:
            resources["pci_passthrough_devices"] = jsonutils.dumps([
                {
                    "address": f"0000:81:00.{index}",
                    "vendor_id": constants.PCI_VENDOR_ID,
                    "product_id": constants.PCI_PRODUCT_ID,
                    "dev_type": "type-PCI",
                    "status": "available",
                    "parent_addr": None,
                    "numa_node": None,
                    "label": "label_8086_1520",
                }
                for index in range(constants.PCI_DEVICES_PER_HOST)
            ])
        return resources

    def update_provider_tree(self, provider_tree: Any, nodename: str,
                             allocations: Any = None) -> None:
        """The fake driver's inventory, and vGPUs on a child provider (as
        libvirt reports them)."""
        super().update_provider_tree(provider_tree, nodename, allocations)
        child = f"{nodename}-vgpu"
        if not provider_tree.exists(child):
            provider_tree.new_child(name=child, parent=nodename)
        provider_tree.update_inventory(child, {
            orc.VGPU: {
                "total": constants.VGPUS_PER_HOST,
                "min_unit": 1,
                "max_unit": constants.VGPUS_PER_HOST,
                "step_size": 1,
                "allocation_ratio": 1.0,
                "reserved": 0,
            },
        })
        provider_tree.add_traits(child, os_traits.OWNER_NOVA)

    def capacity(self) -> dict[str, int]:
        """What this host has: ``vcpus``, ``memory_mb`` and ``local_gb``."""
        return {
            "vcpus": self.vcpus,
            "memory_mb": self.memory_mb,
            "local_gb": self.local_gb,
        }

    def get_host_uptime(self) -> str:
        """Answer like ``uptime`` would, instead of raising."""
        up = datetime.timedelta(seconds=int(time.time() - self._booted_at))
        now = time.strftime("%H:%M:%S")
        return f" {now} up {up},  1 user,  load average: 0.00, 0.00, 0.00"

    def live_migration(
        self,
        context: Any,
        instance: Any,
        dest: str,
        post_method: Any,
        recover_method: Any,
        block_migration: bool = False,
        migrate_data: Any = None,
    ) -> None:
        """Run a live migration for its duration, then end it.

        Progress goes into the Migration record every quarter second. When
        the job is aborted, Nova's rollback runs with status ``cancelled``;
        when it fails (at its time, or at once when forced to complete: a
        forced switch-over does not save a failing job), the reason is
        recorded as a failed instance-action event and Nova's rollback runs
        (status ``failed``), the way a virt driver reports a failed
        migration job; otherwise, when its time is up or it is forced to
        complete, Nova's post-migration runs.
        """
        duration = _metadata_float(
            instance,
            constants.META_LIVE_MIGRATION_DURATION,
            CONF.sandbox.live_migration_duration,
        )
        result = _metadata_result(instance)
        job = _LiveMigrationJob(int(_metadata_float(
            instance, constants.META_LIVE_MIGRATION_ABORTS_LOST, 0.0)))
        with self._jobs_lock:
            self._jobs[instance.uuid] = job
        LOG.info(
            "Live migration to %s started: %.1f s, result %s",
            dest, duration, result, instance=instance,
        )
        try:
            self._run_live_migration(
                job, instance, migrate_data.migration, block_migration,
                duration, result,
            )
        finally:
            with self._jobs_lock:
                self._jobs.pop(instance.uuid, None)

        if job.request == job.STOP:
            LOG.info("Live migration to %s stopped with its compute service",
                     dest, instance=instance)
        elif job.request == job.ABORT:
            LOG.info("Live migration to %s aborted", dest, instance=instance)
            recover_method(context, instance, dest, migrate_data,
                           migration_status="cancelled")
        elif result == constants.RESULT_FAIL:
            self._record_failure(context, instance, dest)
            recover_method(context, instance, dest, migrate_data)
        else:
            post_method(context, instance, dest, block_migration,
                        migrate_data)

    def _run_live_migration(
        self,
        job: _LiveMigrationJob,
        instance: Any,
        migration: Any,
        block_migration: bool,
        duration: float,
        result: str,
    ) -> None:
        """Report progress until the time is up or the job is told to end."""
        started = time.monotonic()
        while job.request is None:
            elapsed = time.monotonic() - started
            fraction = min(1.0, elapsed / duration) if duration else 1.0
            if result == constants.RESULT_HANG:
                fraction *= _HANG_FRACTION
            elif elapsed >= duration:
                break
            try:
                _report_progress(instance, migration, block_migration,
                                 fraction)
            except (db_exception.DBError, sqla_exc.OperationalError) as error:
                # Progress is advisory, as a hypervisor's job info is. The
                # sandbox's SQLite refused one of these writes with
                # "database is locked" once, in a benchmark on a busy machine:
                # that must not fail the migration.
                LOG.warning("Progress not recorded: %s", error,
                            instance=instance)
            job.wait(_PROGRESS_INTERVAL)

    def _record_failure(self, context: Any, instance: Any, dest: str) -> None:
        """Record why the migration failed where an API client can read it.

        A failed instance-action event carries the message in ``details``
        (microversion 2.84) and the traceback for admins.
        """
        reason = (
            f"live migration to {dest} failed: the sandbox driver was told "
            f"to fail it (live_migration_result={constants.RESULT_FAIL})"
        )
        try:
            with compute_utils.EventReporter(
                context, constants.LIVE_MIGRATION_FAILURE_EVENT, self._host,
                instance.uuid, graceful_exit=True,
            ):
                raise exception.MigrationError(reason=reason)
        except exception.MigrationError as error:
            LOG.error("Live migration failed: %s", error, instance=instance)

    def live_migration_abort(self, instance: Any) -> None:
        """Abort the running migration: it ends with Nova's rollback."""
        self._ask_job(instance, _LiveMigrationJob.ABORT)

    def live_migration_force_complete(self, instance: Any) -> None:
        """Finish the running migration now: the server moves."""
        self._ask_job(instance, _LiveMigrationJob.COMPLETE)

    def _ask_job(self, instance: Any, request: str) -> None:
        with self._jobs_lock:
            job = self._jobs.get(instance.uuid)
        if job is None:
            LOG.warning("No live migration running to %s", request,
                        instance=instance)
            return
        if request == job.ABORT and job.aborts_to_lose > 0:
            job.aborts_to_lose -= 1
            LOG.warning("Abort dropped (%s): the live migration goes on",
                        constants.META_LIVE_MIGRATION_ABORTS_LOST,
                        instance=instance)
            return
        job.ask(request)

    def post_live_migration(
        self,
        context: Any,
        instance: Any,
        block_device_info: Any,
        migrate_data: Any = None,
    ) -> None:
        """Forget the server on the source once it runs on the target."""
        self.destroy(context, instance, network_info=None,
                     block_device_info=block_device_info)

    def finish_revert_migration(self, context: Any, instance: Any,
                                *args: Any, **kwargs: Any) -> None:
        """Fail the end of a resize's revert, on the source, when the
        server's metadata says so."""
        if _told_to_fail(instance, constants.META_RESIZE_REVERT_RESULT):
            raise exception.NovaException(
                "restarting the reverted server failed: the sandbox driver "
                "was told to fail it "
                f"({constants.META_RESIZE_REVERT_RESULT}="
                f"{constants.RESULT_FAIL})")
        super().finish_revert_migration(context, instance, *args, **kwargs)

    def rebuild(self, context: Any, instance: Any, *args: Any,
                evacuate: bool = False, **kwargs: Any) -> None:
        """Fail an evacuation's rebuild when the server's metadata says so;
        otherwise leave it to Nova's own rebuild (destroy, then spawn)."""
        if evacuate and _told_to_fail(instance,
                                      constants.META_EVACUATION_RESULT):
            raise exception.NovaException(
                "rebuilding the evacuated server failed: the sandbox "
                "driver was told to fail it "
                f"({constants.META_EVACUATION_RESULT}="
                f"{constants.RESULT_FAIL})")
        raise NotImplementedError()

    def cleanup_host(self, host: str) -> None:
        """Stop the running migrations when the compute service stops.

        They end where they are, as if the nova-compute process had died:
        Nova finds them when the service comes back.
        """
        with self._jobs_lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.ask(_LiveMigrationJob.STOP)
        super().cleanup_host(host)

    def migrate_disk_and_power_off(
        self,
        context: Any,
        instance: Any,
        dest: str,
        flavor: Any,
        network_info: Any,
        block_device_info: Any = None,
        timeout: int = 0,
        retry_interval: int = 0,
    ) -> str:
        """Copy the disks for the cold-migration delay, then power off."""
        delay = _metadata_float(
            instance,
            constants.META_COLD_MIGRATION_DELAY,
            CONF.sandbox.cold_migration_delay,
        )
        LOG.info("Copying disks to %s for %.1f s", dest, delay,
                 instance=instance)
        time.sleep(delay)
        if _told_to_fail(instance, constants.META_COLD_MIGRATION_RESULT):
            # The way libvirt reports a copy that failed before anything
            # changed: Nova puts the server back as it was.
            raise exception.InstanceFaultRollback(
                inner_exception=exception.ResizeError(
                    reason=f"copying the disks to {dest} failed: the "
                    "sandbox driver was told to fail it "
                    f"({constants.META_COLD_MIGRATION_RESULT}="
                    f"{constants.RESULT_FAIL})"))
        return super().migrate_disk_and_power_off(
            context, instance, dest, flavor, network_info,
            block_device_info, timeout, retry_interval,
        )


def _report_progress(
    instance: Any, migration: Any, block_migration: bool, fraction: float
) -> None:
    """Write memory (and disk) progress like a hypervisor's job info.

    Nova's API schema wants every figure to be at least 1, so a figure is
    never 0: the last byte is reported as remaining until the switch-over.
    """
    flavor = instance.flavor
    total, processed, remaining = _split(flavor.memory_mb * _MIB, fraction)
    migration.memory_total = total
    migration.memory_processed = processed
    migration.memory_remaining = remaining
    disk_bytes = (flavor.root_gb + flavor.ephemeral_gb) * _GIB
    if block_migration and disk_bytes:
        total, processed, remaining = _split(disk_bytes, fraction)
        migration.disk_total = total
        migration.disk_processed = processed
        migration.disk_remaining = remaining
    migration.save()
    instance.progress = int(fraction * 100)
    instance.save()


def _split(total: int, fraction: float) -> tuple[int, int, int]:
    """Return ``(total, processed, remaining)``, none of them below 1."""
    processed = min(total - 1, max(1, int(total * fraction)))
    return total, processed, total - processed


def _metadata(instance: Any) -> dict[str, str]:
    return dict(instance.metadata or {})


def _metadata_float(instance: Any, key: str, default: float) -> float:
    """A non-negative number from the server's metadata, else ``default``."""
    raw = _metadata(instance).get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        LOG.warning("Ignoring %s=%r: not a non-negative number", key, raw,
                    instance=instance)
        return default
    return value


def _told_to_fail(instance: Any, key: str) -> bool:
    """Whether the server's metadata ``key`` says ``fail``."""
    raw = _metadata(instance).get(key, constants.RESULT_SUCCESS)
    if raw not in constants.MOVE_RESULTS:
        LOG.warning("Ignoring %s=%r: not one of %s", key, raw,
                    ", ".join(constants.MOVE_RESULTS), instance=instance)
    return raw == constants.RESULT_FAIL


def _metadata_result(instance: Any) -> str:
    """How the live migration ends, from the metadata or the default."""
    raw = _metadata(instance).get(constants.META_LIVE_MIGRATION_RESULT)
    if raw is None:
        return str(CONF.sandbox.live_migration_result)
    if raw not in constants.LIVE_MIGRATION_RESULTS:
        LOG.warning("Ignoring %s=%r: not one of %s",
                    constants.META_LIVE_MIGRATION_RESULT, raw,
                    ", ".join(constants.LIVE_MIGRATION_RESULTS),
                    instance=instance)
        return str(CONF.sandbox.live_migration_result)
    return raw
