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
"""The servers real hosts carry, against the sandbox's Nova: members of
server groups, servers with PCI devices and vGPUs, busy, locked, in ERROR,
shelved, and deleted while the run goes on."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import openstack.exceptions
import pytest

from nova_migrate_flows.sandbox import constants
from tests.functional.operations import cli

pytestmark = pytest.mark.functional


@pytest.fixture
def server_group(sdk) -> Iterator[Any]:
    """Create server groups for a test (``server_group(name, policy,
    rules=None)``); deleted when it ends."""
    created = []

    def create(name: str, policy: str,
               rules: dict[str, Any] | None = None) -> Any:
        attrs: dict[str, Any] = {"name": name, "policy": policy}
        if rules:
            attrs["rules"] = rules
        group = sdk.compute.create_server_group(**attrs)
        created.append(group)
        return group

    yield create
    for group in created:
        sdk.compute.delete_server_group(group, ignore_missing=True)


@pytest.fixture
def flavor_with(sdk) -> Iterator[Any]:
    """Create a flavor with extra specs for a test (``flavor_with(name,
    specs)``, m1.tiny's sizes); deleted when it ends (its servers keep
    their copy of it)."""
    created = []

    def create(name: str, specs: dict[str, str]) -> Any:
        flavor = sdk.compute.create_flavor(name=name, ram=512, vcpus=1,
                                           disk=1)
        created.append(flavor)
        sdk.compute.create_flavor_extra_specs(flavor, specs)
        return flavor

    yield create
    for flavor in created:
        sdk.compute.delete_flavor(flavor, ignore_missing=True)


def plan_row(ran: cli.Ran, server_id: str) -> dict[str, Any]:
    return next(r for r in ran.json["plan"] if r["server"] == server_id)


def host_of(sdk, server: dict[str, Any]) -> str:
    return str(sdk.compute.get_server(server["id"]).compute_host)


# -- server groups -----------------------------------------------------------

def test_hard_affinity_members_are_left_whole_with_the_reason(
        nmf, boot_servers, sdk, server_group):
    group = server_group("db", "affinity")
    members = boot_servers("host1", count=2, group=group.id,
                           name_prefix="db")
    (web,) = boot_servers("host1", name_prefix="web")

    ran = nmf("host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 1, ran.err  # the host is not empty
    assert ran.result_of(web["id"])["status"] == "migrated"
    for member in members:
        result = ran.result_of(member["id"])
        assert result["status"] == "skipped"
        assert "member of affinity server group db" in result["reason"]
        assert "moves no member away from the others" in result["reason"]
        assert "live-migrate --force SERVER HOST" in result["reason"]
        assert host_of(sdk, member) == "host1"
        # No request was made that could only fail.
        assert cli.live_migrations(sdk, member["id"]) == []
    (host,) = ran.json["hosts"]
    assert sorted(s["name"] for s in host["left"]) == ["db-001", "db-002"]


def test_anti_affinity_target_holding_a_member_is_refused(
        nmf, boot_servers, sdk, server_group):
    group = server_group("web", "anti-affinity")
    (first,) = boot_servers("host1", group=group.id, name_prefix="web-a")
    boot_servers("host2", group=group.id, name_prefix="web-b")
    before = cli.snapshot(sdk)

    ran = nmf("live-migrate", first["id"], "host2")

    assert ran.code == 2
    line = ran.error_line()
    assert "member of anti-affinity server group web" in line
    assert "target host host2 holds web-b-001 already" in line
    assert cli.snapshot(sdk) == before


def test_anti_affinity_members_of_two_hosts_move_one_at_a_time(
        nmf, boot_servers, sdk, server_group):
    group = server_group("web", "anti-affinity")
    slow = cli.server_metadata(duration=2)
    (first,) = boot_servers("host1", group=group.id, name_prefix="web-a",
                            metadata=slow)
    (second,) = boot_servers("host2", group=group.id, name_prefix="web-b",
                             metadata=slow)

    ran = nmf("host-evacuate-live", "host1", "host2", "--format", "json")

    assert ran.code == 0, ran.err
    hosts = {host_of(sdk, first), host_of(sdk, second)}
    assert hosts == {"host3", "host4"}
    (one,) = cli.live_migrations(sdk, first["id"])
    (other,) = cli.live_migrations(sdk, second["id"])
    # By Nova's own records: the second began once the first had ended.
    earlier, later = sorted([one, other], key=lambda m: m.created_at)
    assert later.created_at >= earlier.updated_at


def test_an_anti_affinity_drain_says_what_the_hosts_left_cannot_take(
        nmf, boot_servers, sdk, server_group):
    group = server_group("web", "anti-affinity")
    (first,) = boot_servers("host1", group=group.id, name_prefix="web-a")
    (second,) = boot_servers("host2", group=group.id, name_prefix="web-b")
    boot_servers("host3", group=group.id, name_prefix="web-c")

    ran = nmf("host-evacuate-live", "host1", "host2", "--format", "json")

    assert ran.code == 1, ran.err
    assert ran.result_of(first["id"])["status"] == "migrated"
    assert host_of(sdk, first) == "host4"
    result = ran.result_of(second["id"])
    assert result["status"] == "skipped"
    assert ("every host left to it holds its share already (host3, host4)"
            in result["reason"])
    assert host_of(sdk, second) == "host2"
    assert cli.live_migrations(sdk, second["id"]) == []


def test_soft_policies_are_noted(nmf, boot_servers, server_group):
    group = server_group("cache", "soft-anti-affinity")
    (member,) = boot_servers("host1", group=group.id)

    ran = nmf("host-evacuate-live", "host1", "--dry-run", "--format",
              "json")

    assert ran.code == 0, ran.err
    row = plan_row(ran, member["id"])
    assert row["action"] == "live-migrate"
    check = row["checks"]["server-groups"]
    assert check["status"] == "warn"
    assert check["message"].startswith(
        "member of soft-anti-affinity server group cache")
    assert check["message"].endswith("noted, not checked")


# -- servers Nova does not live-migrate --------------------------------------

@pytest.fixture
def non_live(boot_servers, flavor_with) -> dict[str, dict[str, Any]]:
    """On host1: a server with a PCI passthrough device, one with a vGPU
    (the sandbox's hosts have both), and a plain one."""
    pci = flavor_with("t.pci", {
        "pci_passthrough:alias": f"{constants.PCI_ALIAS}:1"})
    vgpu = flavor_with("t.vgpu", {"resources:VGPU": "1"})
    (with_pci,) = boot_servers("host1", flavor=pci.id, name_prefix="pci")
    (with_vgpu,) = boot_servers("host1", flavor=vgpu.id, name_prefix="vgpu")
    (plain,) = boot_servers("host1", name_prefix="plain")
    return {"pci": with_pci, "vgpu": with_vgpu, "plain": plain}


def test_a_live_drain_skips_pci_and_vgpu_servers(nmf, non_live, sdk):
    ran = nmf("host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 1, ran.err
    assert ran.result_of(non_live["plain"]["id"])["status"] == "migrated"
    for kind, spec in (("pci", "PCI passthrough devices "
                        "(pci_passthrough:alias=nmf-pci:1)"),
                       ("vgpu", "vGPUs (resources:VGPU=1)")):
        result = ran.result_of(non_live[kind]["id"])
        assert result["status"] == "skipped"
        assert spec in result["reason"]
        assert "Nova does not live-migrate it ([drain] non_live_servers " \
            "= skip)" in result["reason"]
        assert host_of(sdk, non_live[kind]) == "host1"
        assert list(sdk.compute.migrations(
            instance_uuid=non_live[kind]["id"])) == []


def test_a_live_drain_cold_migrates_them_when_told(nmf, non_live, sdk):
    ran = nmf.configured("[drain]\nnon_live_servers = cold-migrate\n",
                         "host-evacuate-live", "host1", "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.json["hosts"][0]["empty"] is True
    for kind in ("pci", "vgpu"):
        result = ran.result_of(non_live[kind]["id"])
        assert (result["action"], result["status"]) == ("cold-migrate",
                                                        "migrated")
        assert "cold-migrate instead ([drain] non_live_servers)" in \
            result["reason"]
        (migration,) = sdk.compute.migrations(
            instance_uuid=non_live[kind]["id"])
        assert (migration.migration_type, migration.status) == (
            "migration", "confirmed")
        after = sdk.compute.get_server(non_live[kind]["id"])
        assert (after.compute_host != "host1", after.status) == (True,
                                                                 "ACTIVE")
    result = ran.result_of(non_live["plain"]["id"])
    assert (result["action"], result["status"]) == ("live-migrate",
                                                    "migrated")


def test_nova_refuses_what_the_preflight_refuses(nmf, non_live, sdk):
    before = cli.snapshot(sdk)

    ran = nmf("live-migrate", non_live["pci"]["id"])

    assert ran.code == 2
    assert "Nova does not live-migrate it" in ran.error_line()
    assert cli.snapshot(sdk) == before
    # What Nova itself does with the request the tool did not send.
    with pytest.raises(openstack.exceptions.BadRequestException):
        sdk.compute.live_migrate_server(non_live["pci"]["id"], host=None,
                                        block_migration="auto")
    assert host_of(sdk, non_live["pci"]) == "host1"


def test_an_unknown_non_live_servers_value_is_one_error_line(nmf,
                                                              non_live):
    ran = nmf.configured("[drain]\nnon_live_servers = shelve\n",
                         "host-evacuate-live", "host1", "--dry-run")

    assert ran.code == 2
    assert ran.error_line() == (
        "nova-migrate-flow: error: configuration: [drain] non_live_servers "
        "= 'shelve': not skip, nor a kind of move that takes a running "
        "server off a running host; use one of: skip, cold-migrate")


# -- busy, locked, ERROR, shelved ------------------------------------------

def test_a_busy_server_is_waited_for_then_skipped(nmf, boot_servers, sdk):
    (busy,) = boot_servers("host1", name_prefix="busy", metadata={
        constants.META_COLD_MIGRATION_DELAY: "10"})
    (idle,) = boot_servers("host1", name_prefix="idle")
    sdk.compute.migrate_server(busy["id"])
    cli.wait_until(lambda: (sdk.compute.get_server(busy["id"]).task_state
                            or "").startswith("resize_m"))

    ran = nmf.configured("[migration]\nbusy_wait = 1\n",
                         "host-evacuate-live", "host1", "--dry-run",
                         "--format", "json")

    assert ran.code == 0, ran.err
    row = plan_row(ran, busy["id"])
    assert row["action"] == "skip"
    assert row["skip_reason"].startswith(
        "server-state: busy: task_state resize_m")
    assert row["skip_reason"].endswith(
        "wait for it to end (still busy after 1 s, [migration] busy_wait)")
    assert plan_row(ran, idle["id"])["action"] == "live-migrate"
    # Leave it settled for the clean-up.
    sdk.compute.wait_for_server(sdk.compute.get_server(busy["id"]),
                                status="VERIFY_RESIZE", wait=60)
    sdk.compute.confirm_server_resize(busy["id"])
    cli.wait_until(lambda: sdk.compute.get_server(busy["id"]).status
                   == "ACTIVE")


def test_locked_servers_move_only_if_allowed(nmf, boot_servers, sdk):
    (locked,) = boot_servers("host1", name_prefix="locked")
    sdk.compute.lock_server(locked["id"], locked_reason="audit")

    moved = nmf("host-evacuate-live", "host1", "--dry-run", "--format",
                "json")
    kept = nmf.configured("[migration]\nmove_locked = false\n",
                          "host-evacuate-live", "host1", "--dry-run",
                          "--format", "json")
    refused = nmf.configured("[migration]\nmove_locked = false\n",
                             "live-migrate", locked["id"], "--dry-run",
                             "--format", "json")

    row = plan_row(moved, locked["id"])
    assert row["action"] == "live-migrate"
    assert row["checks"]["server-state"] == {
        "status": "warn",
        "message": "locked (audit): moved anyway with admin rights; tell "
        "its owner"}
    row = plan_row(kept, locked["id"])
    assert row["action"] == "skip"
    assert row["skip_reason"] == (
        "server-state: locked (audit): not moved ([migration] move_locked "
        "= False); unlock it ('openstack server unlock') to move it, or "
        "tell its owner")
    assert kept.code == 0
    assert refused.code == 2
    assert plan_row(refused, locked["id"])["refused"]


def test_a_server_in_error_is_skipped_with_what_to_do(nmf, boot_servers,
                                                      sdk):
    (broken,) = boot_servers("host1", name_prefix="broken")
    sdk.compute.reset_server_state(broken["id"], "error")

    drain = nmf("host-evacuate-live", "host1", "--dry-run", "--format",
                "json")
    single = nmf("live-migrate", broken["id"])

    assert drain.code == 0, drain.err
    reason = plan_row(drain, broken["id"])["skip_reason"]
    assert reason.startswith("server-state: ERROR: only ACTIVE or PAUSED "
                             "servers move live; the server is in ERROR")
    assert "'openstack server set --state active'" in reason
    assert single.code == 2
    assert "the server is in ERROR" in single.error_line()


def test_a_shelved_offloaded_server_is_refused_with_what_to_do(
        nmf, boot_servers, sdk):
    (shelved,) = boot_servers("host1", name_prefix="shelved")
    sdk.compute.shelve_server(shelved["id"])
    sdk.compute.wait_for_server(sdk.compute.get_server(shelved["id"]),
                                status="SHELVED_OFFLOADED", wait=60)

    ran = nmf("live-migrate", shelved["id"])
    drain = nmf("host-evacuate-live", "host1", "--dry-run", "--format",
                "json")

    assert ran.code == 2
    line = ran.error_line()
    assert "SHELVED_OFFLOADED: only ACTIVE or PAUSED servers move live; it " \
        "is shelved and offloaded: on no host, so there is nothing to move" \
        in line
    assert "openstack server unshelve" in line
    # On no host, it is no host's server.
    assert shelved["id"] not in {r["server"] for r in drain.json["plan"]}


def test_a_server_deleted_while_the_drain_runs_is_skipped(
        nmf, boot_servers, sdk):
    servers = boot_servers("host1", count=2, metadata=cli.server_metadata(
        duration=4))
    ids = [s["id"] for s in servers]
    deleted: list[str] = []

    def delete_the_waiting_one() -> None:
        # Once one server moves, the other waits for Nova's one slot of
        # host1 (max_concurrent 1, no pipeline): delete that one.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not deleted:
            moving = [i for i in ids if cli.live_migrations(sdk, i)]
            if moving:
                (waiting,) = set(ids) - set(moving)
                sdk.compute.delete_server(waiting)
                deleted.append(waiting)
                return
            time.sleep(0.1)

    deleter = threading.Thread(target=delete_the_waiting_one, daemon=True)
    deleter.start()

    ran = nmf.configured("[drain]\npipeline_depth = 0\n",
                         "host-evacuate-live", "host1", "--format", "json")
    deleter.join(timeout=60)

    (gone,) = deleted
    (moved,) = set(ids) - {gone}
    assert ran.code == 0, ran.err
    assert ran.result_of(moved)["status"] == "migrated"
    result = ran.result_of(gone)
    assert (result["status"], result["reason"]) == (
        "skipped", "gone: it was deleted after the plan was made; nothing "
        "to move")
    assert ran.json["hosts"][0]["empty"] is True
