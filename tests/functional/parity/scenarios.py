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
"""Scenarios run the same way on the fake and on real Nova.

Each drives a :class:`~tests.functional.parity.clouds.Run` through the
compute interface only, so what it leaves behind (answers, servers,
records) can be compared between the clouds.
"""

from collections.abc import Callable

from nova_migrate_flows.sandbox import constants
from tests.functional.parity.clouds import LONG, Run

Scenario = Callable[[Run], None]


def _service_id(run: Run, host: str) -> str:
    return next(s.id for s in run.compute.list_services() if s.host == host)


def _live(run: Run, label: str, host: str | None) -> None:
    server_id = run.ids[label]
    run.ask(f"live-migrate {label} to {host}",
            lambda: run.compute.live_migrate(server_id, host, "auto"))


def live_migration_completes(run: Run) -> None:
    run.boot("a", "host1")
    _live(run, "a", "host2")
    run.settled("a")


def a_paused_server_stays_paused(run: Run) -> None:
    run.boot("a", "host1", status="PAUSED")
    _live(run, "a", "host2")
    run.settled("a")


def live_migration_fails(run: Run) -> None:
    run.boot("a", "host1", live=constants.RESULT_FAIL)
    _live(run, "a", "host2")
    run.settled("a")


def live_migration_to_its_own_host(run: Run) -> None:
    run.boot("a", "host1")
    _live(run, "a", "host1")
    run.settled("a")


def live_migration_to_a_disabled_host(run: Run) -> None:
    run.boot("a", "host1")
    service = _service_id(run, "host2")
    run.ask("disable host2", lambda: run.compute.update_service(
        service, disabled=True, disabled_reason="parity"))
    _live(run, "a", "host2")
    run.settled("a")
    run.ask("enable host2", lambda: run.compute.update_service(
        service, disabled=False))


def abort_a_running_migration(run: Run) -> None:
    run.boot("a", "host1", live=constants.RESULT_HANG)
    _live(run, "a", "host2")
    record = run.migration_status("a", "running")
    server_id = run.ids["a"]
    run.ask("abort running", lambda: run.compute.abort_migration(
        server_id, record.id))
    run.settled("a")
    run.ask("abort cancelled", lambda: run.compute.abort_migration(
        server_id, record.id))


def abort_and_force_complete_in_nova_s_queue(run: Run) -> None:
    """One live migration at a time per source host: the second waits in
    ``queued``, where Nova aborts it but does not force it."""
    run.boot("a", "host1", live=constants.RESULT_HANG)
    run.boot("b", "host1")
    _live(run, "a", "host2")
    first = run.migration_status("a", "running")
    _live(run, "b", "host3")
    second = run.migration_status("b", "queued")
    a, b = run.ids["a"], run.ids["b"]
    run.ask("force-complete queued", lambda: run.compute.
            force_complete_migration(b, second.id))
    run.ask("force-complete unknown", lambda: run.compute.
            force_complete_migration(a, second.id))
    run.ask("abort queued", lambda: run.compute.abort_migration(
        b, second.id))
    run.settled("b")
    run.ask("abort running", lambda: run.compute.abort_migration(
        a, first.id))
    run.settled("a")


def force_complete_a_hanging_migration(run: Run) -> None:
    run.boot("a", "host1", live=constants.RESULT_HANG)
    _live(run, "a", "host2")
    record = run.migration_status("a", "running")
    server_id = run.ids["a"]
    run.ask("force-complete running", lambda: run.compute.
            force_complete_migration(server_id, record.id))
    run.settled("a")
    run.ask("force-complete completed", lambda: run.compute.
            force_complete_migration(server_id, record.id))


def force_complete_a_failing_migration(run: Run) -> None:
    run.boot("a", "host1", live=constants.RESULT_FAIL, duration=LONG)
    _live(run, "a", "host2")
    record = run.migration_status("a", "running")
    server_id = run.ids["a"]
    run.ask("force-complete running", lambda: run.compute.
            force_complete_migration(server_id, record.id))
    run.settled("a")


def _until_verify_resize(run: Run, label: str) -> None:
    run.until(label, "VERIFY_RESIZE",
              lambda server, records: server.status == "VERIFY_RESIZE")


def cold_migration_confirmed(run: Run) -> None:
    run.boot("a", "host1")
    server_id = run.ids["a"]
    run.ask("confirm active", lambda: run.compute.confirm_resize(server_id))
    run.ask("cold-migrate to host1", lambda: run.compute.cold_migrate(
        server_id, "host1"))
    run.ask("cold-migrate to host2", lambda: run.compute.cold_migrate(
        server_id, "host2"))
    _until_verify_resize(run, "a")
    run.ask("confirm", lambda: run.compute.confirm_resize(server_id))
    run.settled("a")


def stopped_server_resized_then_reverted(run: Run) -> None:
    run.boot("a", "host1", status="SHUTOFF")
    run.scheduled("a")
    server_id = run.ids["a"]
    flavor = run.compute.get_flavor("m1.small").id or ""
    run.ask("resize", lambda: run.compute.resize(server_id, flavor))
    _until_verify_resize(run, "a")
    run.ask("revert", lambda: run.compute.revert_resize(server_id))
    run.settled("a")


def a_revert_that_fails(run: Run) -> None:
    run.boot("a", "host1", revert=constants.RESULT_FAIL)
    server_id = run.ids["a"]
    run.ask("cold-migrate to host2", lambda: run.compute.cold_migrate(
        server_id, "host2"))
    _until_verify_resize(run, "a")
    run.ask("revert", lambda: run.compute.revert_resize(server_id))
    run.settled("a")


def cold_migration_fails(run: Run) -> None:
    run.boot("a", "host1", cold=constants.RESULT_FAIL)
    server_id = run.ids["a"]
    run.ask("cold-migrate to host2", lambda: run.compute.cold_migrate(
        server_id, "host2"))
    run.settled("a")


def stopped_server_resize_fails(run: Run) -> None:
    run.boot("a", "host1", status="SHUTOFF", cold=constants.RESULT_FAIL)
    run.scheduled("a")
    server_id = run.ids["a"]
    flavor = run.compute.get_flavor("m1.small").id or ""
    run.ask("resize", lambda: run.compute.resize(server_id, flavor))
    run.settled("a")


def stop_then_start(run: Run) -> None:
    run.boot("a", "host1")
    server_id = run.ids["a"]
    run.ask("start active", lambda: run.compute.start_server(server_id))
    run.ask("stop", lambda: run.compute.stop_server(server_id))
    run.settled("a")
    run.ask("stop stopped", lambda: run.compute.stop_server(server_id))
    run.ask("start", lambda: run.compute.start_server(server_id))
    run.settled("a")


def _evacuate_from_a_failed_host(run: Run, label: str) -> None:
    run.cloud.stop_compute("host1")
    service = _service_id(run, "host1")
    run.ask("force host1 down", lambda: run.compute.update_service(
        service, forced_down=True))
    server_id = run.ids[label]
    run.ask("evacuate", lambda: run.compute.evacuate(server_id, "host3"))
    run.settled(label)


def evacuation_fails(run: Run) -> None:
    run.boot("a", "host1", cold=constants.RESULT_FAIL)
    _evacuate_from_a_failed_host(run, "a")


def evacuation(run: Run) -> None:
    run.boot("a", "host1")
    server_id = run.ids["a"]
    run.ask("evacuate to an unknown host", lambda: run.compute.evacuate(
        server_id, "nowhere"))
    run.ask("evacuate from a host up", lambda: run.compute.evacuate(
        server_id, "host3"))
    run.cloud.stop_compute("host1")
    service = _service_id(run, "host1")
    run.ask("force host1 down", lambda: run.compute.update_service(
        service, forced_down=True))
    run.ask("evacuate to its own host", lambda: run.compute.evacuate(
        server_id, "host1"))
    run.ask("evacuate", lambda: run.compute.evacuate(server_id, "host3"))
    run.settled("a")


ALL: tuple[Scenario, ...] = (
    live_migration_completes,
    a_paused_server_stays_paused,
    live_migration_fails,
    live_migration_to_its_own_host,
    live_migration_to_a_disabled_host,
    abort_a_running_migration,
    abort_and_force_complete_in_nova_s_queue,
    force_complete_a_hanging_migration,
    force_complete_a_failing_migration,
    cold_migration_confirmed,
    stopped_server_resized_then_reverted,
    a_revert_that_fails,
    cold_migration_fails,
    stopped_server_resize_fails,
    stop_then_start,
    evacuation,
    evacuation_fails,
)
