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
"""Every configuration option of nova-migrate-flows, in one place.

Options are registered only on the :class:`oslo_config.cfg.ConfigOpts` the
caller passes to :func:`register_opts`, so a service can embed the library
with its own configuration object. :func:`list_opts` feeds
``oslo-config-generator`` (entry point ``oslo.config.opts``) and the
configuration reference in the documentation.
"""

import os
import re

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from nova_migrate_flows import exceptions

PROJECT = "nova-migrate-flows"

NOVA_GROUP = "nova"
#: Seconds an HTTP request to Nova or placement may take, by default.
DEFAULT_TIMEOUT = 120
PLACEMENT_GROUP = "placement"
MISTRAL_GROUP = "mistral"

#: Task plugins run, in this order, before anything is changed.
DEFAULT_PREFLIGHT_TASKS = [
    "server-state",
    "server-groups",
    "source-service",
    "target-host",
    "storage",
    "config-drive",
    "flavor-disks",
    "flavor",
    "capacity",
]
#: Task plugins run, in this order, after each server moved.
DEFAULT_VERIFY_TASKS = [
    "migration-completed",
    "host-changed",
    "server-state-restored",
    "flavor-applied",
    "server-group-policy",
]

default_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "state_dir",
        default=os.path.join(
            os.path.expanduser("~"), ".local", "state", "nova-migrate-flows"
        ),
        sample_default="~/.local/state/nova-migrate-flows",
        help="Directory for the state of this tool: the default SQLite "
        "database that records every run, so that an interrupted run can "
        "be resumed.",
    ),
]

nova_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "cloud",
        help="Name of a cloud in clouds.yaml to connect to, found the usual "
        "openstacksdk way (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
        "~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml). "
        "When set, the keystoneauth options of this group are ignored.",
    ),
    cfg.StrOpt(
        "clouds_yaml",
        help="Path of the clouds.yaml file that holds ``cloud``. When set, "
        "it is the only file read (with a ``secure.yaml`` beside it, if "
        "any): OS_CLIENT_CONFIG_FILE, OS_CLIENT_SECURE_FILE, OS_CLOUD and "
        "the other OS_* variables of the environment are ignored. Unset: "
        "openstacksdk's usual search, environment included.",
    ),
    cfg.IntOpt(
        "read_retries",
        default=5,
        min=0,
        max=50,
        help="How many times a read (GET) of the Compute API is retried "
        "after a connection error, a timeout or an HTTP 5xx answer. Writes "
        "are never repeated blindly: after an ambiguous failure the tool "
        "looks at what Nova did before sending a request again.",
    ),
    cfg.FloatOpt(
        "retry_backoff",
        default=0.5,
        min=0.0,
        max=60.0,
        help="First delay, in seconds, before a read is retried. The delay "
        "doubles at each attempt (with random jitter) up to "
        "``retry_backoff_max``.",
    ),
    cfg.FloatOpt(
        "retry_backoff_max",
        default=10.0,
        min=0.0,
        max=300.0,
        help="Longest delay, in seconds, between two retries of a read.",
    ),
    cfg.IntOpt(
        "conflict_timeout",
        default=120,
        min=0,
        max=3600,
        help='How long, in seconds, an action that Nova refused with HTTP '
        '409 ("instance is in task_state ...") is retried before the '
        "server is reported failed.",
    ),
]

migration_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "block_migration",
        default="auto",
        choices=[
            ("auto", "Let Nova decide from the storage it sees "
             "(microversion 2.25 and later)."),
            ("true", "Always copy the disks (local storage)."),
            ("false", "Never copy the disks (shared storage)."),
        ],
        help="Default block migration mode of live migrations; the command "
        "line's --block-migrate forces ``true``.",
    ),
    cfg.StrOpt(
        "instance_storage",
        default="local",
        choices=[
            ("local", "Instance disks are on the compute hosts' own disks."),
            ("shared", "Instance disks are on storage that every compute "
             "host mounts (Ceph, NFS)."),
        ],
        help="Where the cloud keeps instance disks. Used by the config-drive "
        "preflight check when the block migration mode is ``auto``.",
    ),
    cfg.StrOpt(
        "config_drive_format",
        default="iso9660",
        choices=[
            ("iso9660", "A CD-ROM image, which libvirt cannot live-migrate "
             "on local storage."),
            ("vfat", "A disk image, which live-migrates like any disk."),
        ],
        help="The cloud's ``[DEFAULT] config_drive_format`` from nova.conf.",
    ),
    cfg.IntOpt(
        "completion_timeout_per_gib",
        default=800,
        min=1,
        max=86400,
        help="Seconds a live migration may take per GiB of data to copy "
        "(memory, plus the disks when block migrating), like Nova's "
        "``[libvirt] live_migration_completion_timeout``. When Nova's own "
        "timeouts are 0, this tool's timeouts are the only guard.",
    ),
    cfg.IntOpt(
        "completion_timeout_min",
        default=300,
        min=1,
        max=86400,
        help="Floor, in seconds, of the completion timeout of one migration, "
        "however small the server.",
    ),
    cfg.IntOpt(
        "progress_timeout",
        default=150,
        min=0,
        max=86400,
        help="Seconds a running live migration may go without copying more "
        "data before ``timeout_action`` is taken. 0 turns this check off "
        "(the completion timeout still applies).",
    ),
    cfg.StrOpt(
        "timeout_action",
        default="abort",
        choices=[
            ("abort", "Abort the migration; the server stays on its source."),
            ("force_complete", "Pause the server so the migration can "
             "finish (Nova's force-complete)."),
            ("fail", "Leave the migration running and report the server "
             "failed."),
        ],
        help="What to do with a live migration that exceeds a timeout.",
    ),
    cfg.FloatOpt(
        "abort_retry_interval",
        default=30.0,
        min=1.0,
        max=3600.0,
        help="Seconds after Nova took the abort of a live migration (a "
        "timeout's, or an interrupted run's) that a migration still queued, "
        "preparing or running is aborted again; the wait doubles after each "
        "further abort. Nova's compute drops an abort that comes as it "
        "starts the migration (its driver has no job to abort yet), and the "
        "migration would run to its end.",
    ),
    cfg.FloatOpt(
        "poll_interval",
        default=1.0,
        min=0.01,
        max=60.0,
        help="Longest time, in seconds, between two polls of a source host's "
        "migrations while they change. Polls come sooner when a migration is "
        "expected to end sooner (from the progress Nova reports).",
    ),
    cfg.FloatOpt(
        "poll_interval_max",
        default=30.0,
        min=0.01,
        max=600.0,
        help="Longest time, in seconds, between two polls of a source host "
        "whose migrations show no change: each poll that finds none of them "
        "changed doubles the time to the next, from ``poll_interval`` up to "
        "this; a change, a new migration or an abort brings it back to "
        "``poll_interval``. Timeouts are still checked when they run out. "
        "At or below ``poll_interval``, polls never back off.",
    ),
    cfg.FloatOpt(
        "poll_interval_min",
        default=0.2,
        min=0.01,
        max=60.0,
        help="Shortest time, in seconds, between two polls of one source "
        "host's migrations.",
    ),
    cfg.IntOpt(
        "operation_timeout",
        default=1800,
        min=1,
        max=86400,
        help="Seconds a cold migration, resize or evacuation may take to "
        "reach its next state before the server is reported failed.",
    ),
    cfg.FloatOpt(
        "busy_wait",
        default=30.0,
        min=0.0,
        max=3600.0,
        help="Seconds the preflight waits for a server busy with another "
        "task (a ``task_state`` set: a snapshot, a reboot, a resize) to "
        "finish it. A server still busy then is skipped (refused, for a "
        "command that moves one server), with the reason. A server already "
        "live-migrating is not waited for: its migration is adopted.",
    ),
    cfg.BoolOpt(
        "move_locked",
        default=True,
        help="Move locked servers (admin credentials may), with a warning "
        "that tells you to tell their owners. False leaves them where they "
        "are (refuses them, for a command that moves one server), with the "
        "reason.",
    ),
    cfg.ListOpt(
        "preflight_tasks",
        default=DEFAULT_PREFLIGHT_TASKS,
        help="Task plugins (entry points in ``nova_migrate_flows.tasks``) "
        "that check each server before anything is changed, in this order. "
        "``nova-migrate-flow list-tasks`` lists the installed ones.",
    ),
    cfg.ListOpt(
        "verify_tasks",
        default=DEFAULT_VERIFY_TASKS,
        help="Task plugins (entry points in ``nova_migrate_flows.tasks``) "
        "that verify each server after it moved, in this order. A server is "
        "reported migrated only when all of them pass.",
    ),
]

drain_opts: list[cfg.Opt] = [
    cfg.IntOpt(
        "max_concurrent_live_migrations",
        default=1,
        min=1,
        max=64,
        help="Live migrations running at once off one source host, like "
        "Nova's ``max_concurrent_live_migrations`` (default 1, as in "
        "Nova). The command line's --max-concurrent overrides it.",
    ),
    cfg.IntOpt(
        "max_concurrent_cold_migrations",
        default=1,
        min=1,
        max=64,
        help="Cold migrations or evacuations running at once off one source "
        "host.",
    ),
    cfg.IntOpt(
        "max_concurrent_total",
        default=32,
        min=1,
        max=1024,
        help="Migrations running at once over all source hosts.",
    ),
    cfg.IntOpt(
        "pipeline_depth",
        default=2,
        min=0,
        max=8,
        help="Extra live migrations per source host that are handed to Nova "
        "ahead of time, where they wait in Nova's own queue (status "
        "``queued``). Nova starts the next one the moment a running one "
        "ends, so a host drains as fast as Nova allows. They are handed "
        "over once Nova's compute holds a migration of the host (queued, "
        "running or done), so that Nova's conductor checks the host's "
        "first request alone. 0 hands a migration over only when a running "
        "one ended.",
    ),
    cfg.StrOpt(
        "stopped_servers",
        default="cold-migrate",
        choices=[
            ("cold-migrate", "Cold-migrate SHUTOFF servers (SUSPENDED "
             "servers cannot be migrated and are skipped)."),
            ("skip", "Leave SHUTOFF and SUSPENDED servers where they are."),
        ],
        help="What host-evacuate-live does with servers that cannot move "
        "live.",
    ),
    cfg.StrOpt(
        "non_live_servers",
        default="skip",
        help="What host-evacuate-live does with running servers that Nova "
        "does not live-migrate because of what their flavor gives them "
        "(PCI passthrough devices, vGPUs, and the other extra specs listed "
        "in the operator guide): skip, or the name of a kind of move "
        "(``cold-migrate``, or one a plugin adds; ``nova-migrate-flow "
        "list-tasks`` lists them) to move them with instead. A cold "
        "migration stops the server while it moves.",
    ),
    cfg.ListOpt(
        "candidate_hosts",
        default=[],
        help="Target hosts to try, in order, when no --target-host is given "
        "and Nova's scheduler should not choose. When Nova answers that a "
        "host has no room, the next one is tried.",
    ),
    cfg.BoolOpt(
        "stop_on_failure",
        default=False,
        help="After the first server that fails, start no other migration "
        "(those running are finished and verified).",
    ),
    cfg.BoolOpt(
        "enable_after",
        default=False,
        help="Enable the compute service again once its host is empty. "
        "Otherwise an emptied host stays disabled, with a reason that says "
        "it was evacuated.",
    ),
    cfg.StrOpt(
        "interrupt_action",
        default="abort",
        choices=[
            ("abort", "Abort the migrations in flight; their servers stay on "
             "their sources."),
            ("finish", "Let the migrations in flight finish and verify "
             "them."),
        ],
        help="What happens to migrations in flight on SIGINT or SIGTERM. "
        "No new migration starts either way; a second signal stops at "
        "once, leaving the run to ``nova-migrate-flow resume``.",
    ),
]

watch_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "source",
        default="poll",
        choices=[
            ("poll", "Poll GET /os-migrations per source host."),
            ("notifications", "Listen to Nova's versioned notifications "
             "and poll only as a safety net."),
        ],
        help="How runs notice that a move ended. With ``notifications``, "
        "a move's end is seen the moment Nova says it, and each source "
        "host is polled only every ``fallback_interval`` (and when a "
        "timeout is due).",
    ),
    cfg.StrOpt(
        "transport_url",
        secret=True,
        help="The oslo.messaging transport of Nova's notifications (as "
        "``[oslo_messaging_notifications] transport_url`` in nova.conf, "
        "e.g. ``rabbit://user:password@rabbit01:5672/``).",
    ),
    cfg.ListOpt(
        "topics",
        default=["versioned_notifications"],
        help="The topics Nova sends its versioned notifications to "
        "(``[notifications] versioned_notifications_topics`` in nova.conf)."
        " Nova must have ``[notifications] notification_format`` "
        "``versioned`` or ``both``.",
    ),
    cfg.StrOpt(
        "exchange",
        default="nova",
        help="The exchange of Nova's notifications (Nova's control "
        "exchange).",
    ),
    cfg.StrOpt(
        "pool",
        help="The listener pool: a pool gets its own copy of every "
        "notification, so Nova's other listeners miss none. Default: one "
        "per run (``nova-migrate-flows-HOST-PID-RANDOM``), deleted from the "
        "bus when the run ends; a pool named here is left in place.",
    ),
    cfg.FloatOpt(
        "fallback_interval",
        default=30.0,
        min=1.0,
        help="With ``source = notifications``: seconds between two polls of "
        "a source host while no notification arrives, so that a lost "
        "notification, or a bus that is down, only delays noticing a "
        "move's end.",
    ),
    cfg.FloatOpt(
        "confirm_within",
        default=30.0,
        min=0.0,
        help="With ``source = notifications``: the longest, in seconds, "
        "that a live migration Nova said succeeded waits before its "
        "record is read and its server verified. Its throttle slot comes "
        "back 0.3 s after Nova said so; the ends told meanwhile are read "
        "together, in one request for the records and one for the "
        "servers, sooner when "
        "nothing else of the run is moving or a source host's next move "
        "waits for them. 0 reads each end at once.",
    ),
]

maintenance_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "hook_task",
        default="run-command",
        help="The task plugin (an entry point of ``nova_migrate_flows.tasks``"
        " of kind ``hook``) that ``host-maintenance roll`` runs once per "
        "host while the host is empty: ``run-command`` runs the roll's "
        "``--hook`` command; a plugin can call Ironic, an Ansible playbook, "
        "... A hook interrupted by a crash runs again when the roll is "
        "resumed, so it must be idempotent.",
    ),
    cfg.FloatOpt(
        "hook_timeout",
        default=3600.0,
        min=1.0,
        help="Seconds a hook may run before the roll stops at its host "
        "(the host stays in maintenance).",
    ),
    cfg.FloatOpt(
        "wait_up",
        default=600.0,
        min=1.0,
        help="Seconds ``host-maintenance roll`` waits for a host's compute "
        "service to be up after its hook before it stops (``--wait-up``).",
    ),
]

persistence_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="URL of the TaskFlow persistence backend that records every "
        "run, so that it can be listed, shown and resumed (and shared by "
        "conductors). Default: a SQLite file in ``state_dir``. The scheme "
        "chooses the backend: ``sqlite``, ``postgresql`` and ``mysql`` "
        "(SQLAlchemy URLs, such as ``postgresql+psycopg2://...``) use a "
        "fast SQL backend; any other scheme TaskFlow has a persistence "
        "backend for is fetched from TaskFlow: ``dir:///path`` or "
        "``file:///path`` (a directory, on one machine), "
        "``zookeeper://host:port[,host:port...]/path`` (with the "
        "``[zookeeper]`` extra), ``memory://`` (lost when the process "
        "ends). Another scheme is refused. It may hold a password: it is "
        "never logged.",
    ),
]

jobboard_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "backend",
        default="redis",
        choices=[
            ("redis", "A Redis server (claims expire and are kept alive "
             "while a job runs)."),
            ("zookeeper", "A ZooKeeper ensemble (claims end with the "
             "conductor's session, whose timeout is ``claim_expiry``)."),
        ],
        help="The TaskFlow jobboard that ``submit`` posts jobs to and "
        "conductors claim them from.",
    ),
    cfg.HostAddressOpt("redis_host", default="127.0.0.1",
                       help="Address of the Redis server."),
    cfg.PortOpt("redis_port", default=6379, help="Port of the Redis server."),
    cfg.StrOpt("redis_password", secret=True,
               help="Password of the Redis server, if it needs one."),
    cfg.IntOpt("redis_db", default=0, min=0,
               help="Redis database number."),
    cfg.StrOpt(
        "zookeeper_hosts", default="127.0.0.1:2181",
        help="Comma-separated host:port list of the ZooKeeper ensemble.",
    ),
    cfg.StrOpt(
        "name", default="nova-migrate-flows",
        help="Name of the board (the Redis key namespace or ZooKeeper "
        "path) shared by submitters and conductors.",
    ),
    cfg.IntOpt(
        "claim_expiry",
        default=30,
        min=3,
        max=3600,
        help="Seconds a conductor's claim on a job lasts unless renewed. "
        "A conductor renews its claims every third of this while it runs "
        "their jobs, so when it dies another conductor takes its jobs over "
        "within this time (and resumes them from their recorded state). "
        "With ZooKeeper, it is the session timeout (the server may hold it "
        "between 2 and 20 times its tickTime).",
    ),
]

conductor_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "name",
        sample_default="<hostname>",
        help="Name of this conductor on the jobboard (default: the host "
        "name and process id).",
    ),
    cfg.IntOpt(
        "max_simultaneous_jobs",
        default=4,
        min=1,
        max=1024,
        help="Jobs (one per source host) a conductor runs at once.",
    ),
    cfg.FloatOpt(
        "wait_timeout",
        default=1.0,
        min=0.1,
        max=60.0,
        help="Seconds between two looks at the jobboard for new jobs.",
    ),
]

engine_opts: list[cfg.Opt] = [
    cfg.IntOpt(
        "executor_workers",
        default=64,
        min=2,
        max=4096,
        help="Threads that run tasks; shared by all the flows of a run.",
    ),
]


def _ksa_opts() -> list[cfg.Opt]:
    session = ks_loading.get_session_conf_options()
    for opt in session:
        if opt.dest == "timeout":
            opt.default = DEFAULT_TIMEOUT
    return (
        session
        + ks_loading.get_auth_common_conf_options()
        + ks_loading.get_auth_plugin_conf_options("password")
        + ks_loading.get_adapter_conf_options(include_deprecated=False)
    )


mistral_opts: list[cfg.Opt] = [
    cfg.FloatOpt(
        "poll_interval",
        default=5.0,
        min=0.1,
        help="Seconds between two looks at the Mistral action execution, "
        "task and workflow execution of an action that runs: once one of "
        "them has ended (the task timed out, the execution was cancelled), "
        "the operation is stopped the way SIGINT stops it "
        "(``[drain] interrupt_action``).",
    ),
    cfg.FloatOpt(
        "report_timeout",
        default=600.0,
        min=0,
        help="Seconds a detached action keeps trying to report its result "
        "while Mistral's API cannot be reached.",
    ),
    cfg.StrOpt(
        "detach_to",
        default="auto",
        choices=[
            ("auto", "``jobboard`` when the configuration sets any "
             "``[jobboard]`` option, ``process`` otherwise."),
            ("process", "A detached process of its own on the executor's "
             "host."),
            ("jobboard", "One job on the jobboard (``[jobboard]``, and the "
             "persistence backend shared with the conductors): a conductor "
             "runs the operation and reports its result, and another one "
             "takes the job over if it dies. The conductors need "
             "``[mistral]`` in their own configuration."),
        ],
        help="Where an action with ``detach: true`` runs its operation.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option of nova-migrate-flows on ``conf``."""
    conf.register_opts(default_opts)
    conf.register_opts(nova_opts, group=NOVA_GROUP)
    for group, service_type in (
        (NOVA_GROUP, "compute"),
        (PLACEMENT_GROUP, "placement"),
    ):
        ks_loading.register_adapter_conf_options(conf, group)
        conf.set_default("service_type", service_type, group=group)
        conf.set_default(
            "valid_interfaces", ["internal", "public"], group=group
        )
    ks_loading.register_session_conf_options(conf, NOVA_GROUP)
    # No request may hang for ever (a Nova that waits on a dead compute).
    conf.set_default("timeout", DEFAULT_TIMEOUT, group=NOVA_GROUP)
    ks_loading.register_auth_conf_options(conf, NOVA_GROUP)
    # Mistral's API, for the actions: endpoint_override alone when its
    # authentication is disabled, Keystone credentials otherwise.
    conf.register_opts(mistral_opts, group=MISTRAL_GROUP)
    ks_loading.register_adapter_conf_options(conf, MISTRAL_GROUP)
    conf.set_default("service_type", "workflowv2", group=MISTRAL_GROUP)
    ks_loading.register_session_conf_options(conf, MISTRAL_GROUP)
    conf.set_default("timeout", DEFAULT_TIMEOUT, group=MISTRAL_GROUP)
    ks_loading.register_auth_conf_options(conf, MISTRAL_GROUP)
    conf.register_opts(migration_opts, group="migration")
    conf.register_opts(drain_opts, group="drain")
    conf.register_opts(maintenance_opts, group="maintenance")
    conf.register_opts(watch_opts, group="watch")
    conf.register_opts(engine_opts, group="engine")
    conf.register_opts(persistence_opts, group="persistence")
    conf.register_opts(jobboard_opts, group="jobboard")
    conf.register_opts(conductor_opts, group="conductor")


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """The options for ``oslo-config-generator`` and the documentation."""
    return [
        (None, default_opts),
        (NOVA_GROUP, nova_opts + _ksa_opts()),
        (
            PLACEMENT_GROUP,
            ks_loading.get_adapter_conf_options(include_deprecated=False),
        ),
        ("migration", migration_opts),
        ("drain", drain_opts),
        ("maintenance", maintenance_opts),
        ("watch", watch_opts),
        ("engine", engine_opts),
        ("persistence", persistence_opts),
        ("jobboard", jobboard_opts),
        ("conductor", conductor_opts),
        (MISTRAL_GROUP, mistral_opts + _ksa_opts()),
    ]


def validate(conf: cfg.ConfigOpts) -> None:
    """Read every option once, so a bad value fails now, not mid-run.

    Raises ConfigurationError naming the option.
    """
    for group, options in list_opts():
        section = conf[group] if group else conf
        for opt in options:
            try:
                getattr(section, opt.dest)
            except (cfg.ConfigFileValueError, ValueError) as exc:
                where = f"[{group or 'DEFAULT'}] {opt.dest}"
                text = " ".join(str(exc).split()) or type(exc).__name__
                text = re.sub(r"from LocationInfo\(.*?detail='([^']*)'\)",
                              r"in \1", text)
                raise exceptions.ConfigurationError(
                    f"configuration: {where}: {text}"
                ) from None
            except cfg.NoSuchOptError:
                continue
