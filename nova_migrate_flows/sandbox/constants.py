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
"""Names and defaults shared by the sandbox server and its clients.

This module imports nothing but the standard library: the command line and
the tests read it without Nova installed.
"""

#: Prefix of the server metadata keys the sandbox's virt driver obeys.
METADATA_PREFIX = "nmf_sandbox:"
#: Seconds a live migration of this server runs (a float).
META_LIVE_MIGRATION_DURATION = METADATA_PREFIX + "live_migration_duration"
#: How a live migration of this server ends: ``success``, ``fail``, ``hang``.
META_LIVE_MIGRATION_RESULT = METADATA_PREFIX + "live_migration_result"
#: How many aborts of a live migration of this server the driver drops (an
#: integer), as Nova's compute drops one that comes before its driver has
#: a job to abort: the migration goes on as if never asked.
META_LIVE_MIGRATION_ABORTS_LOST = (METADATA_PREFIX
                                   + "live_migration_aborts_lost")
#: Seconds a cold migration or resize of this server copies its disks.
META_COLD_MIGRATION_DELAY = METADATA_PREFIX + "cold_migration_delay"
#: How a cold migration or resize of this server ends: ``success``, or
#: ``fail`` (the disk copy fails and Nova rolls back: the server stays on
#: its source, in its state, with its flavor; the migration is ``error``).
META_COLD_MIGRATION_RESULT = METADATA_PREFIX + "cold_migration_result"
#: How reverting a resize or cold migration of this server ends:
#: ``success``, or ``fail`` (the server, back on its source with its old
#: flavor, goes to ERROR; the migration is ``error``).
META_RESIZE_REVERT_RESULT = METADATA_PREFIX + "resize_revert_result"
#: How an evacuation of this server ends: ``success``, or ``fail`` (the
#: rebuild on the target fails: the migration is ``failed``, the server in
#: ERROR).
META_EVACUATION_RESULT = METADATA_PREFIX + "evacuation_result"

#: Devices every compute host of the sandbox has, for flavors that ask for
#: them: PCI passthrough devices (the flavor extra spec
#: ``pci_passthrough:alias`` = ``nmf-pci:1``) and vGPUs (``resources:VGPU``
#: = ``1``), which Nova does not live-migrate.
PCI_ALIAS = "nmf-pci"
PCI_VENDOR_ID = "8086"
PCI_PRODUCT_ID = "1520"
PCI_DEVICES_PER_HOST = 2
VGPUS_PER_HOST = 4

RESULT_SUCCESS = "success"
RESULT_FAIL = "fail"
RESULT_HANG = "hang"
LIVE_MIGRATION_RESULTS = (RESULT_SUCCESS, RESULT_FAIL, RESULT_HANG)
#: What a cold migration, a resize or an evacuation can be told to do.
MOVE_RESULTS = (RESULT_SUCCESS, RESULT_FAIL)

#: Name of the instance-action event the driver records a failed live
#: migration under, with the reason in its ``details`` (microversion 2.84).
LIVE_MIGRATION_FAILURE_EVENT = "compute_live_migration_operation"

DEFAULT_COMPUTES = 4
DEFAULT_LIVE_MIGRATION_DURATION = 2.0
DEFAULT_COLD_MIGRATION_DELAY = 1.0
DEFAULT_TOKEN_TTL = 3600.0
DEFAULT_HOST_VCPUS = 16
DEFAULT_HOST_RAM_MB = 32768
DEFAULT_HOST_DISK_GB = 500
DEFAULT_MAX_CONCURRENT_LIVE_MIGRATIONS = 1

REGION = "RegionOne"
DOMAIN_ID = "default"
DOMAIN_NAME = "Default"
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
DEMO_USER = "demo"
DEMO_PROJECT = "demo"
ADMIN_ROLES = ("admin", "member", "reader")
MEMBER_ROLES = ("member", "reader")
APP_CREDENTIAL_NAME = "sandbox-admin"

#: The clouds in the generated ``clouds.yaml``.
CLOUD_ADMIN = "sandbox"
CLOUD_DEMO = "sandbox-demo"
CLOUD_APPCRED = "sandbox-appcred"

#: The host name of the controller services (API, conductor, scheduler).
CONTROLLER_HOST = "controller"
#: The compute hosts are ``host1`` .. ``hostN``.
COMPUTE_HOST_PREFIX = "host"


def compute_hosts(count: int) -> list[str]:
    """The names of ``count`` compute hosts: ``host1`` .. ``hostN``."""
    return [f"{COMPUTE_HOST_PREFIX}{i}" for i in range(1, count + 1)]


#: Name of the one image the sandbox's fake Glance serves for booting.
IMAGE_NAME = "cirros-0.6.3-x86_64-disk"
IMAGE_ID = "c2a5e6b0-3f4d-4a8e-9b1c-5d7e8f901234"

#: URL prefixes the sandbox serves under ``http://127.0.0.1:PORT``.
PREFIX_COMPUTE = "/compute"
PREFIX_PLACEMENT = "/placement"
PREFIX_IDENTITY = "/identity"
PREFIX_CONTROL = "/sandbox"
COMPUTE_VERSION_PATH = "/v2.1"

#: Header carrying the control secret to the ``/sandbox`` control API.
CONTROL_SECRET_HEADER = "X-Sandbox-Secret"  # noqa: S105 (a name)
#: Environment variable telling the sandbox's Nova to run with threads.
NOVA_THREADING_ENV = "OS_NOVA_DISABLE_EVENTLET_PATCHING"
