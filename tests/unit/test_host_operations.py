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
"""The runner end to end against the in-memory cloud: host operations."""

import contextlib
import threading

import pytest

from nova_migrate_flows import exceptions
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.exceptions import ExitCode


def by_status(result):
    statuses = {}
    for outcome in result.outcomes:
        statuses.setdefault(outcome["status"], []).append(outcome["server"])
    return statuses


def test_host_evacuate_live_moves_every_server_and_disables(cloud, run):
    ids = [cloud.add_server("host1").id for _ in range(5)]

    result = run("host-evacuate-live", hosts=["host1"])

    assert result.exit_code == ExitCode.OK
    assert by_status(result) == {"migrated": ids}
    assert cloud.list_servers("host1") == []
    for outcome in result.outcomes:
        assert outcome["destination"] == cloud.servers[
            outcome["server"]].host != "host1"
    service = cloud.services["host1"]
    assert service.status == "disabled"
    assert service.disabled_reason.startswith(
        "nova-migrate-flows: evacuated by host-evacuate-live")
    assert result.run_id in service.disabled_reason
    live = [m for m in cloud.migrations if m.kind == "live-migration"]
    assert sorted(m.record.server_id for m in live) == sorted(ids)
    assert all(m.record.status == "completed" for m in live)
    # The service is written twice: disabled when the run starts, and its
    # reason changed at the end.
    assert [w for w in cloud.writes if w[0] == "update_service"] == [
        ("update_service", service.id)] * 2


def test_never_more_live_migrations_than_nova_runs_plus_the_pipeline(
        conf, cloud, run):
    for _ in range(6):
        cloud.add_server("host1")
    in_flight = []
    in_conductor = []
    original = cloud.live_migrate

    def counting(*args, **kwargs):
        active = [m for m in cloud.migrations
                  if m.kind == "live-migration" and not m.record.is_final]
        in_flight.append(len(active) + 1)
        in_conductor.append(sum(m.record.status == "accepted"
                                for m in active))
        return original(*args, **kwargs)

    cloud.live_migrate = counting

    run("host-evacuate-live", hosts=["host1"])

    # Nova's 1 running + the pipeline's 2 queued (the default depth).
    assert max(in_flight) == 3
    # The pipeline's requests went only once Nova's compute held the
    # first: none was sent while the first was still in the conductor.
    assert in_conductor[:2] == [0, 0]


def test_the_lane_that_holds_two_servers_starts_first(cloud, run):
    """Five servers of a host in four lanes (1 running + 2 ahead + 1): the
    moves waiting for a slot take it in the plan's order, so the first of
    the lane that holds two goes at once (the very first request goes to
    whichever lane asks first) and its second is not left to move alone
    at the end."""
    for index in range(5):
        cloud.add_server("host1", name=f"s{index}")
    sent = []
    original = cloud.live_migrate

    def recording(server_id, *args, **kwargs):
        sent.append(server_id)
        return original(server_id, *args, **kwargs)

    cloud.live_migrate = recording

    result = run("host-evacuate-live", hosts=["host1"])

    planned = [o["server"] for o in result.outcomes]
    assert sorted(sent) == sorted(planned)
    first = sent[0]
    assert [s for s in sent if s != first] == [
        s for s in planned if s != first]


def test_a_failing_server_is_isolated(cloud, run):
    good = [cloud.add_server("host1").id for _ in range(3)]
    bad = cloud.add_server("host1", name="bad")
    cloud.behaviours[bad.id] = fake.Behaviour(live="fail")

    result = run("host-evacuate-live", hosts=["host1"])

    assert result.exit_code == ExitCode.SERVERS_FAILED
    statuses = by_status(result)
    assert sorted(statuses["migrated"]) == sorted(good)
    assert statuses["failed"] == [bad.id]
    failed = next(o for o in result.outcomes if o["server"] == bad.id)
    assert "fake driver" in failed["reason"]
    assert failed["destination"] == "host1 (ACTIVE)"
    assert cloud.servers[bad.id].host == "host1"
    host = result.hosts[0]
    assert host["empty"] is False and host["service"] == "disabled"
    assert "incomplete" in host["reason"]


def test_no_valid_host_tries_the_next_candidate(conf, cloud, run):
    server = cloud.add_server("host1", flavor="m1.large")
    cloud.capacity["host2"] = models.HostCapacity("host2", 0, 0, 0)
    conf.config(group="drain", candidate_hosts=["host2", "host3"])

    result = run("host-evacuate-live", hosts=["host1"])

    assert by_status(result) == {"migrated": [server.id]}
    assert cloud.servers[server.id].host == "host3"
    errors = [m.record for m in cloud.migrations if m.record.status == "error"]
    assert [r.server_id for r in errors] == [server.id]
    first_try = cloud.instance_actions(server.id)[-1]
    assert [e.details for e in first_try.failed_events] == [
        "No valid host was found. host2 is not suitable"]


def test_stop_on_failure_starts_nothing_after_a_failure(cloud, run):
    bad = cloud.add_server("host1", name="a-bad")
    cloud.behaviours[bad.id] = fake.Behaviour(live="fail")
    others = [cloud.add_server("host1", name=f"z{i}").id for i in range(5)]

    result = run("host-evacuate-live", hosts=["host1"],
                 stop_on_failure=True, max_concurrent=1, pipeline_depth=0)

    statuses = by_status(result)
    assert statuses["failed"] == [bad.id]
    # At most the one migration already waiting for the slot went on.
    assert cloud.calls["live_migrate"] <= 2
    assert len(statuses["skipped"]) >= len(others) - 1
    assert all(o["reason"].startswith("not started")
               for o in result.outcomes if o["status"] == "skipped")


def test_capacity_refusal_changes_nothing(cloud, run):
    for host in ("host2", "host3", "host4"):
        cloud.capacity[host] = models.HostCapacity(host, 1, 1024, 10)
    cloud.add_server("host1", flavor="m1.large")
    before = dict(cloud.servers), dict(cloud.services)

    with pytest.raises(exceptions.InvalidInput, match="no room for m1.large"):
        run("host-evacuate-live", hosts=["host1"])

    assert cloud.writes == []
    assert (dict(cloud.servers), dict(cloud.services)) == before


def test_dry_run_writes_nothing_and_shows_every_check(cloud, run):
    cloud.add_server("host1")
    cloud.add_server("host1", status="SUSPENDED")

    result = run("host-evacuate-live", hosts=["host1"], dry_run=True)

    assert cloud.writes == []
    assert result.dry_run and result.exit_code == ExitCode.OK
    plan = list(result.to_json()["plan"])
    assert sorted(p["action"] for p in plan) == ["live-migrate", "skip"]
    assert all("server-state" in p["checks"] for p in plan)


def test_shutoff_servers_are_cold_migrated_and_stay_off(cloud, run):
    off = cloud.add_server("host1", status="SHUTOFF")
    on = cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"])

    assert by_status(result) == {"migrated": [off.id, on.id]}
    actions = {o["server"]: o["action"] for o in result.outcomes}
    assert actions == {off.id: "cold-migrate", on.id: "live-migrate"}
    assert cloud.servers[off.id].status == "SHUTOFF"
    assert cloud.servers[on.id].status == "ACTIVE"


def test_stopped_servers_can_be_skipped(conf, cloud, run):
    off = cloud.add_server("host1", status="SHUTOFF")
    conf.config(group="drain", stopped_servers="skip")

    result = run("host-evacuate-live", hosts=["host1"])

    assert by_status(result) == {"skipped": [off.id]}
    assert "stopped_servers = skip" in result.outcomes[0]["reason"]
    assert result.hosts[0]["empty"] is False


def test_service_disabled_before_stays_disabled_with_its_reason(cloud, run):
    cloud.set_service("host1", status="disabled",
                      disabled_reason="hardware ticket 42")
    bad = cloud.add_server("host1")
    cloud.behaviours[bad.id] = fake.Behaviour(live="fail")

    result = run("host-evacuate-live", hosts=["host1"])

    assert result.hosts[0]["disabled_by_us"] is False
    assert result.hosts[0]["service"] == "unchanged"
    assert cloud.services["host1"].disabled_reason == "hardware ticket 42"


def test_enable_after_enables_an_emptied_host(cloud, run):
    cloud.add_server("host1")

    result = run("host-evacuate-live", hosts=["host1"], enable_after=True)

    assert result.hosts[0]["service"] == "enabled"
    assert cloud.services["host1"].status == "enabled"


def test_two_hosts_drain_in_parallel_onto_the_others(cloud, run):
    ids = [cloud.add_server(h).id for h in ("host1", "host2") for _ in
           range(3)]
    seen = []
    original = cloud.live_migrate
    # The first migration of each host waits for the other's: only flows
    # that run side by side get past it.
    meeting = threading.Barrier(2, timeout=30)
    lock = threading.Lock()
    first: set[str] = set()
    met: list[str] = []

    def spy(server_id, *args, **kwargs):
        seen.append({h: cloud.services[h].status for h in ("host1",
                                                          "host2")})
        source = cloud.servers[server_id].host
        with lock:
            is_first = source not in first
            first.add(source)
        if is_first:
            with contextlib.suppress(threading.BrokenBarrierError):
                meeting.wait()
                met.append(source)
        return original(server_id, *args, **kwargs)

    cloud.live_migrate = spy

    result = run("host-evacuate-live", hosts=["host1", "host2"])

    assert sorted(by_status(result)["migrated"]) == sorted(ids)
    assert {cloud.servers[i].host for i in ids} <= {"host3", "host4"}
    assert sorted(met) == ["host1", "host2"]
    # Both sources were disabled before the first migration of either.
    assert seen and all(s == {"host1": "disabled", "host2": "disabled"}
                        for s in seen)


def test_unknown_host_is_bad_input(cloud, run):
    with pytest.raises(exceptions.InvalidInput, match="host nohost: no "
                       "nova-compute service"):
        run("host-evacuate-live", hosts=["nohost"])


def test_target_host_among_the_sources_is_bad_input(cloud, run):
    with pytest.raises(exceptions.InvalidInput, match="--target-host host1"):
        run("host-evacuate-live", hosts=["host1"], target_host="host1")


def test_host_servers_migrate_confirms_and_keeps_power_state(cloud, run):
    on = cloud.add_server("host1")
    off = cloud.add_server("host1", status="SHUTOFF")

    result = run("host-servers-migrate", hosts=["host1"])

    assert by_status(result) == {"migrated": [on.id, off.id]}
    assert cloud.servers[on.id].status == "ACTIVE"
    assert cloud.servers[off.id].status == "SHUTOFF"
    assert {m.record.status for m in cloud.migrations} == {"confirmed"}


def test_host_servers_migrate_no_confirm_leaves_verify_resize(cloud, run):
    server = cloud.add_server("host1")

    result = run("host-servers-migrate", hosts=["host1"], confirm=False)

    assert by_status(result) == {"migrated": [server.id]}
    assert cloud.servers[server.id].status == "VERIFY_RESIZE"
    assert "--no-confirm" in result.outcomes[0]["reason"]


def test_host_evacuate_needs_a_down_service(cloud, run):
    cloud.add_server("host1")

    with pytest.raises(exceptions.InvalidInput, match="is up"):
        run("host-evacuate", hosts=["host1"])
    assert cloud.writes == []


def test_host_evacuate_restarts_servers_that_ran(cloud, run):
    on = cloud.add_server("host1")
    off = cloud.add_server("host1", status="SHUTOFF")
    cloud.set_service("host1", state="down")

    result = run("host-evacuate", hosts=["host1"])

    assert by_status(result) == {"migrated": [on.id, off.id]}
    assert cloud.servers[on.id].status == "ACTIVE"
    assert cloud.servers[off.id].status == "SHUTOFF"
    assert cloud.services["host1"].status == "disabled"


def test_host_evacuate_force_down(cloud, run):
    server = cloud.add_server("host1")

    result = run("host-evacuate", hosts=["host1"], force_down=True)

    assert by_status(result) == {"migrated": [server.id]}
    assert cloud.services["host1"].forced_down is True
