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
"""Host operations with faults between the tool and Nova.

The tool reaches the sandbox through :mod:`tests.functional.faultproxy`,
which answers some requests with 5xx or 409 instead of Nova, resets
connections before Nova saw a request or after Nova answered it, and slows
some answers down; the test's own connection talks to the sandbox directly
and checks Nova's records. Whatever the faults, every server must end
migrated and verified, or failed and safe (ACTIVE or SHUTOFF as before, on
its source or on one target, with no task in progress), and no move may
have been done twice.

The runs: a live evacuation of 10 servers with faults on every kind of
request; a host-servers-migrate with faults on its migrate and confirm
writes; a host-evacuate with faults on evacuate and on the start of the
evacuated servers; a lost answer to the abort of a timed-out migration; a
cloud whose clouds.yaml tells keystoneauth to retry; and reads that fail
often, then always.

The fault mix is fixed by a seed: the n-th request of each route meets the
same fault in every run, so the writes (whose number the faults decide)
meet the same faults every time; the seeds were chosen so that they meet
every kind. How many reads a run sends depends on timing, so the faults on
reads vary a little. The tests print the mix and the outcome counts.
"""

import collections
from typing import Any

import pytest

from nova_migrate_flows.exceptions import ExitCode
from nova_migrate_flows.sandbox import constants
from tests.functional import faultproxy, resilience
from tests.functional.faultproxy import Fault
from tests.functional.operations import cli

pytestmark = pytest.mark.functional

#: The seeds of the runs: the writes of each run meet every kind of fault.
LIVE_SEED = 20260737
COLD_SEED = 20260331
EVACUATE_SEED = 20263735
SERVERS = 10
#: Faults on reads: 5% of them.
READ_MIX = {
    faultproxy.ERROR_500: 0.01, faultproxy.ERROR_502: 0.005,
    faultproxy.ERROR_503: 0.01, faultproxy.RESET_BEFORE: 0.008,
    faultproxy.RESET_AFTER: 0.008, faultproxy.SLOW: 0.009,
}
#: Faults on writes: more of them (24%, and 5% more 409 on server
#: actions), since a run sends few writes and each kind must meet some.
WRITE_MIX = {
    faultproxy.ERROR_500: 0.03, faultproxy.ERROR_502: 0.025,
    faultproxy.ERROR_503: 0.03, faultproxy.RESET_BEFORE: 0.05,
    faultproxy.RESET_AFTER: 0.08, faultproxy.SLOW: 0.025,
}
#: 409 "task_state ..." is Nova's answer to server actions only.
ACTION_CONFLICTS = 0.05
ACTION_PATH = r"^/compute/.*/action$"


def fault_mix(write_actions: frozenset[str] | None = None) -> list[Fault]:
    """The rules of the mix; ``write_actions`` limits the faults on POST
    to those server actions."""
    writes = faultproxy.WRITE_METHODS
    if write_actions is not None:
        writes = frozenset({"PUT", "DELETE"})
    rules = [Fault(kind, rate, methods=frozenset({"GET"}))
             for kind, rate in READ_MIX.items()]
    rules += [Fault(kind, rate, methods=writes)
              for kind, rate in WRITE_MIX.items()]
    if write_actions is not None:
        rules += [Fault(kind, rate, methods=frozenset({"POST"}),
                        path=ACTION_PATH, actions=write_actions)
                  for kind, rate in WRITE_MIX.items()]
    rules.append(Fault(faultproxy.CONFLICT, ACTION_CONFLICTS,
                       methods=frozenset({"POST"}), path=ACTION_PATH,
                       actions=write_actions))
    return rules


@pytest.fixture
def proxy(sandbox: Any) -> Any:
    """Started by the test with its faults; stopped after it."""
    started = []

    def start(faults: list[Fault], seed: int) -> faultproxy.FaultProxy:
        proxy = faultproxy.FaultProxy(sandbox.port, faults, seed=seed,
                                      slow_delay=0.5).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(autouse=True)
def restore(sdk: Any, sandbox_client: Any) -> Any:
    yield
    resilience.restore_services(sdk, sandbox_client)


def migrations_of(sdk: Any, server_id: str, kind: str) -> list[Any]:
    return [m for m in sdk.compute.migrations(instance_uuid=server_id)
            if m.migration_type == kind]


def judge(sdk: Any, ran: cli.Ran, servers: list[dict[str, Any]],
          kind: str, done: str, source: str) -> collections.Counter[str]:
    """Count the outcomes: ``migrated`` (verified by Nova's records),
    ``failed-safe`` and ``lost`` (anything else); check no server was
    moved twice."""
    counts: collections.Counter[str] = collections.Counter()
    results = {r["server"]: r for r in ran.results}
    for server in servers:
        result = results.get(server["id"]) or {"status": "missing"}
        after = sdk.compute.get_server(server["id"])
        records = migrations_of(sdk, server["id"], kind)
        finished = [m for m in records if m.status == done]
        assert len(finished) <= 1, (server["id"], records)
        steady = (after.status == server["status"]
                  and not after.task_state)
        if result["status"] == "migrated":
            assert steady, (server["id"], after.status, after.task_state)
            assert len(finished) == 1, (server["id"], records)
            assert finished[0].id == result["migration_id"]
            assert after.compute_host == result["destination"] != source
            assert finished[0].dest_compute == after.compute_host
            counts["migrated"] += 1
        elif result["status"] == "failed" and steady and (
            after.compute_host == source
            or (finished and finished[0].dest_compute == after.compute_host)
        ):
            counts["failed-safe"] += 1
        else:
            counts["lost"] += 1
    return counts


def check_mix(proxy: faultproxy.FaultProxy) -> None:
    """Every kind of fault met the writes, and some met the reads."""
    on_writes = {kind for (kind, method) in proxy.injected
                 if method != "GET"}
    assert on_writes == set(faultproxy.KINDS), proxy.summary()
    assert any(method == "GET" for _, method in proxy.injected)


def report(proxy: faultproxy.FaultProxy, ran: cli.Ran,
           counts: collections.Counter[str]) -> None:
    compute = proxy.requests_seen("/compute") + proxy.requests_seen(
        "/placement")
    print(proxy.summary())
    print(f"compute and placement requests: {compute}, faulted "
          f"{proxy.total_injected()} "
          f"({100.0 * proxy.total_injected() / max(compute, 1):.1f}%)")
    print(f"outcomes: migrated {counts['migrated']}, failed-safe "
          f"{counts['failed-safe']}, lost {counts['lost']} "
          f"(exit code {ran.code})")
    for result in ran.results:
        if result["status"] != "migrated":
            print(f"  {result['status']} {result['server']}: "
                  f"{result['reason']}; now on {result['destination']}")


def judged(sdk: Any, capsys: Any, faulty: faultproxy.FaultProxy,
           ran: cli.Ran, servers: list[dict[str, Any]], kind: str,
           done: str, source: str, least_migrated: int
           ) -> collections.Counter[str]:
    """Judge a run under faults (with the faults off), report it, and check
    what every such run must show: nothing lost, every server accounted
    for, the whole fault mix met, and at least ``least_migrated`` servers
    moved in spite of it (what the retries achieve: without them most
    servers fail, safely)."""
    faulty.enabled = False
    counts = judge(sdk, ran, servers, kind, done, source)
    with capsys.disabled():
        report(faulty, ran, counts)
    assert ran.code in (0, 1), ran.err
    assert counts["lost"] == 0
    assert counts["migrated"] + counts["failed-safe"] == len(servers)
    assert counts["migrated"] >= least_migrated, counts
    check_mix(faulty)
    return counts


def test_host_evacuate_live_under_faults(sandbox, sdk, boot_servers, proxy,
                                         capsys, tmp_path):
    servers = boot_servers("host1", count=SERVERS,
                           metadata=cli.server_metadata(duration=1))
    faulty = proxy(fault_mix(), LIVE_SEED)
    tool = resilience.Tool(capsys, sandbox, tmp_path, faulty)

    ran = tool("host-evacuate-live", "host1", "--format", "json")

    # 10 of 10 in every run seen: the seeded faults are all recovered.
    judged(sdk, capsys, faulty, ran, servers, "live-migration",
           "completed", "host1", least_migrated=SERVERS)
    assert len(servers) == SERVERS
    # The ambiguous case was met on os-migrateLive itself.
    assert faulty.injected_routes[(
        faultproxy.RESET_AFTER,
        "POST /compute/v2.1/servers/{id}/action os-migrateLive")] >= 1
    (host,) = ran.json["hosts"]
    assert host["empty"] is True


def test_host_servers_migrate_with_faults_on_confirm(
        sandbox, sdk, boot_servers, proxy, capsys, tmp_path):
    servers = boot_servers("host1", count=3) + boot_servers(
        "host1", count=2, stopped=True)
    faulty = proxy(fault_mix(frozenset({
        "migrate", "confirmResize", "os-start", "os-stop"})), COLD_SEED)
    tool = resilience.Tool(capsys, sandbox, tmp_path, faulty)

    ran = tool("host-servers-migrate", "host1", "--format", "json")

    # 4 of 5 in every run seen: a reset before a migrate fails it safely.
    judged(sdk, capsys, faulty, ran, servers, "migration", "confirmed",
           "host1", least_migrated=4)
    confirm = "POST /compute/v2.1/servers/{id}/action confirmResize"
    assert faulty.injected_routes[(faultproxy.RESET_AFTER, confirm)] >= 1


def test_host_evacuate_with_faults_on_evacuate_and_start(
        sandbox, sdk, boot_servers, proxy, capsys, tmp_path, sandbox_client):
    servers = boot_servers("host4", count=3) + boot_servers(
        "host4", stopped=True)
    sandbox_client.stop_compute("host4")
    cli.wait_until(lambda: next(iter(sdk.compute.services(
        binary="nova-compute", host="host4"))).state == "down", timeout=60)
    faulty = proxy(fault_mix(frozenset({"evacuate", "os-start"})),
                   EVACUATE_SEED)
    tool = resilience.Tool(capsys, sandbox, tmp_path, faulty)

    ran = tool("host-evacuate", "host4", "--format", "json")

    # 4 of 4 in every run seen.
    judged(sdk, capsys, faulty, ran, servers, "evacuation", "done",
           "host4", least_migrated=4)
    for action in ("evacuate", "os-start"):
        route = f"POST /compute/v2.1/servers/{{id}}/action {action}"
        assert faulty.injected_routes[(faultproxy.RESET_AFTER, route)] >= 1


def test_a_lost_abort_answer_fails_only_its_own_server(
        sandbox, sdk, boot_servers, proxy, capsys, tmp_path):
    good = boot_servers("host1", count=2, metadata=cli.server_metadata(
        duration=1))
    # Booted last, listed first: its migration goes first, and the others
    # wait in Nova's queue when the poller aborts it.
    (stuck,) = boot_servers("host1", metadata=cli.server_metadata(
        result=constants.RESULT_HANG))
    faulty = proxy([Fault(faultproxy.RESET_AFTER, 1.0,
                          methods=frozenset({"DELETE"}))], LIVE_SEED)
    tool = resilience.Tool(capsys, sandbox, tmp_path, faulty)

    ran = tool("host-evacuate-live", "host1", "--format", "json",
               config="[migration]\ncompletion_timeout_min = 2\n"
               "completion_timeout_per_gib = 1\n")

    faulty.enabled = False
    counts = judge(sdk, ran, [*good, stuck], "live-migration", "completed",
                   "host1")
    with capsys.disabled():
        report(faulty, ran, counts)
    assert faulty.injected[(faultproxy.RESET_AFTER, "DELETE")] >= 1
    assert [ran.result_of(s["id"])["status"] for s in good] == [
        "migrated", "migrated"]
    assert ran.result_of(stuck["id"])["status"] == "failed"
    assert counts == {"migrated": 2, "failed-safe": 1}
    (migration,) = migrations_of(sdk, stuck["id"], "live-migration")
    assert migration.status == "cancelled"


def test_the_transport_does_not_repeat_writes(
        sandbox, sdk, boot_servers, proxy, capsys, tmp_path):
    (server,) = boot_servers("host1", metadata=cli.server_metadata(
        duration=1))
    faulty = proxy([Fault(faultproxy.RESET_AFTER, 1.0,
                          methods=frozenset({"POST"}), path=ACTION_PATH,
                          actions=frozenset({"os-migrateLive"}))],
                   LIVE_SEED)
    # keystoneauth retries any request when a cloud asks it to.
    tool = resilience.Tool(capsys, sandbox, tmp_path, faulty, settings={
        "connect_retries": 2, "status_code_retries": 2})

    ran = tool("live-migrate", server["id"], "--format", "json")

    assert ran.code == 0, ran.err
    assert ran.result_of(server["id"])["status"] == "migrated"
    route = "POST /compute/v2.1/servers/{id}/action os-migrateLive"
    # Sent once; its answer lost; the migration it started adopted.
    assert faulty.requests_seen() and faulty.forwarded[route] == 1
    (migration,) = migrations_of(sdk, server["id"], "live-migration")
    assert migration.status == "completed"


def test_reads_are_retried_within_their_budget(
        sandbox, boot_servers, proxy, capsys, tmp_path):
    boot_servers("host1", count=2)
    kinds = (faultproxy.ERROR_500, faultproxy.ERROR_502, faultproxy.ERROR_503,
             faultproxy.RESET_BEFORE, faultproxy.RESET_AFTER)
    # A dry run sends the same reads every time: the seed fixes the faults.
    flaky = proxy([Fault(kind, 0.06, methods=frozenset({"GET"}))
                   for kind in kinds], LIVE_SEED)
    tool = resilience.Tool(capsys, sandbox, tmp_path / "flaky", flaky)
    fast = "[nova]\nretry_backoff = 0.1\nread_retries = 3\n"

    ran = tool("host-evacuate-live", "host1", "--dry-run", "--format",
               "json", config=fast)

    assert ran.code == 0, ran.err
    assert len(ran.json["plan"]) == 2
    assert sum(flaky.injected.values()) >= 3, flaky.summary()

    down = proxy([Fault(faultproxy.ERROR_503, 1.0,
                        methods=frozenset({"GET"}), path="/os-services")],
                 LIVE_SEED)
    tool = resilience.Tool(capsys, sandbox, tmp_path / "down", down)

    ran = tool("host-evacuate-live", "host1", "--dry-run", "--format",
               "json", config=fast)

    assert ran.code == ExitCode.NOVA_UNAVAILABLE
    assert "keeps failing" in ran.error_line()
    # The first attempt and 3 retries, then the tool gave up.
    assert down.requests_seen("/compute/v2.1/os-services") == 4
