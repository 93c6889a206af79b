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
"""B2: the scale of the orchestrator itself.

``host-evacuate-live`` of 200 source hosts holding 1,000 to 10,000 servers,
against :class:`~nova_migrate_flows.compute.fake.FakeCompute` with
``steps=0`` (every migration ends as it is requested), so only the
orchestrator is measured. 50 more hosts, ten times larger, take the
servers (Nova's RAM weigher, which the fake copies, then never picks a
source host). Each measurement runs in a fresh interpreter, so that peak
memory is its own. Contenders:

* ``runner``: :class:`~nova_migrate_flows.engine.runner.Runner`, one
  engine per source host, persistence off;
* ``runner+sqlite``: the same with :class:`~nova_migrate_flows.engine.
  persistence.FastSQLBackend` on a temporary SQLite file;
* ``runner+postgresql``: the same on a PostgreSQL database, when
  ``benchmarks/run.py --postgresql URL`` names one (its tables are emptied
  first);
* ``single-flow``: the same flows, all hosts in ONE flow run by one engine
  (capped: compiling is quadratic in atoms);
* ``loop``: a bare Python loop making the same calls to the fake, the
  floor.
"""

import concurrent.futures
import contextlib
import functools
import io
import pstats
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import common
import taskflow.engines
from oslo_config import cfg
from taskflow import flow as flow_mod
from taskflow.patterns import unordered_flow

from nova_migrate_flows import constants, opts
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake, models
from nova_migrate_flows.engine import persistence
from nova_migrate_flows.engine import runner as runner_mod
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.flows import host as host_flows

GOAL_CPU_MS = 2.0
GOAL_PEAK_MB = 300.0
GOAL_GROWTH = 11.0
GOAL_PERSISTENCE_MS = 3.0

#: Sizes of the full run and of ``--quick``; each contender with a cap
#: runs only up to that many servers.
FULL: dict[str, Any] = {
    "sizes": [1000, 5000, 10000], "hosts": 200, "targets": 50,
    "single_flow_cap": 1000, "sqlite_cap": 1000,
}
QUICK: dict[str, Any] = {
    "sizes": [50], "hosts": 10, "targets": 3,
    "single_flow_cap": 50, "sqlite_cap": 50,
}
CONTENDERS = ("runner", "runner+sqlite", "single-flow", "loop")
#: Measured when ``benchmarks/run.py --postgresql URL`` names a database.
POSTGRESQL = "runner+postgresql"
#: The contenders that record the run, and the database of each.
RECORDED = ("runner+sqlite", POSTGRESQL)
#: Seconds one measurement may take before it is reported unfinished.
TIMEOUT = 1500.0
POLL_INTERVAL = 0.05
#: oslo.config refuses less (``[migration] poll_interval_min`` has
#: ``min=0.01``).
POLL_INTERVAL_MIN = 0.01


# -- in the worker process -----------------------------------------------


def _cloud(servers: int, hosts: int, targets: int) -> tuple[Any, list[str]]:
    sources = [f"src{i:03d}" for i in range(1, hosts + 1)]
    extra = [f"dst{i:02d}" for i in range(1, targets + 1)]
    cloud = fake.FakeCompute(sources + extra, vcpus=100_000,
                             ram_mb=10_000_000, disk_gb=1_000_000, steps=0)
    for host in extra:
        cloud.capacity[host] = models.HostCapacity(
            host, 1_000_000, 100_000_000, 10_000_000)
    for index in range(servers):
        cloud.add_server(sources[index % hosts], flavor="m1.tiny")
    return cloud, sources


def _conf() -> Any:
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project="nova-migrate-flows-benchmarks",
         default_config_files=[], default_config_dirs=[])
    conf.set_override("poll_interval", POLL_INTERVAL, "migration")
    conf.set_override("poll_interval_min", POLL_INTERVAL_MIN, "migration")
    return conf


def _count_atoms(flow: Any) -> int:
    count = 1 if flow.retry is not None else 0
    for node, _ in flow.iter_nodes():
        count += (_count_atoms(node) if isinstance(node, flow_mod.Flow)
                  else 1)
    return count


def _atoms(conf: Any, request: Any, by_host: dict[str, list[str]]) -> int:
    """Atoms of the preflight flow and of every host's flow."""

    total = _count_atoms(host_flows.preflight_flow(
        request.operation, conf.migration.preflight_tasks))
    for host, ids in by_host.items():
        total += _count_atoms(host_flows.host_flow(
            request.operation, host, [[i, "live-migrate"] for i in ids],
            conf.migration.verify_tasks, request.targets,
            {"live": request.max_concurrent + request.pipeline_depth,
             "cold": request.max_concurrent_cold},
        ))
    return total


def _backend(conf: Any, url: str | None) -> Any:
    """The persistence backend at ``url``, emptied (None: no backend)."""
    if url is None:
        return None
    conf.set_override("connection", url, "persistence")
    backend = persistence.backend_from_conf(conf)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.clear_all()
        conn.upgrade()
    return backend


def _run_runner(conf: Any, cloud: Any, request: Any,
                backend: Any) -> dict[str, Any]:
    result = runner_mod.Runner(conf, cloud, backend=backend).run(request)
    return {"migrated": result.count("migrated"),
            "hosts_not_empty": sum(1 for h in result.hosts
                                   if not h.get("empty"))}


def _run_single_flow(conf: Any, cloud: Any,
                     request: Any) -> dict[str, Any]:
    """The runner's work with every host's flow in ONE flow."""
    runtime = runtime_mod.Runtime(conf, cloud, request)
    runtime.start()
    # As many task threads as the runner gives the same request.
    lanes = (request.max_concurrent + request.pipeline_depth + 1
             + request.max_concurrent_cold + 1)
    workers = max(conf.engine.executor_workers,
                  len(request.hosts) * lanes + 4)
    common_store = {constants.REQUEST: request.to_dict(),
                    "run_id": str(uuid.uuid4())}
    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as executor:
            servers = {s.id: s.to_dict() for host in request.hosts
                       for s in cloud.list_servers(host)}
            preflight = taskflow.engines.load(
                host_flows.preflight_flow(request.operation,
                                          conf.migration.preflight_tasks),
                store=dict(common_store, **{constants.SERVERS: servers}),
                engine="parallel", executor=executor)
            preflight.storage.inject({constants.RUNTIME: runtime},
                                     transient=True)
            preflight.run()
            plan = preflight.storage.fetch(constants.PLAN)
            flow = unordered_flow.Flow("all-hosts")
            flow.add(*[
                host_flows.host_flow(
                    request.operation, host,
                    [[sid, e["action"]] for sid, e in plan.items()
                     if e["server"].get("host") == host
                     and e["action"] != constants.SKIP],
                    conf.migration.verify_tasks, request.targets,
                    {"live": request.max_concurrent
                     + request.pipeline_depth,
                     "cold": request.max_concurrent_cold},
                )
                for host in request.hosts
            ])
            engine = taskflow.engines.load(
                flow, store=dict(common_store, **{constants.PLAN: plan}),
                engine="parallel", executor=executor)
            engine.storage.inject({constants.RUNTIME: runtime}, transient=True)
            engine.run()
    finally:
        runtime.close()
    left = sum(1 for host in request.hosts
               if engine.storage.fetch(constants.host_key("result", host))
               .get("empty") is False)
    return {"migrated": sum(1 for o in runtime.outcomes.values()
                            if o["status"] == "migrated"),
            "hosts_not_empty": left}


def _run_loop(cloud: Any, hosts: list[str]) -> dict[str, Any]:
    """The same calls to the fake as the runner makes, in a bare loop."""
    services = {s.host: s.id for s in cloud.list_services()}
    cloud.host_capacities()
    planned = {host: cloud.list_servers(host) for host in hosts}
    migrated = 0
    left = 0
    for host in hosts:
        cloud.update_service(services[host], disabled=True,
                             disabled_reason="benchmark")
        for server in planned[host]:
            cloud.live_migrate(server.id, None, "auto")
            done = False
            for _ in range(100):
                done = any(r.server_id == server.id
                           and r.status == "completed"
                           for r in cloud.list_migrations(
                               source_compute=host))
                if done:
                    break
            after = cloud.get_server(server.id)
            migrated += int(done and after.host != host)
        left += int(bool(cloud.list_servers(host)))
        cloud.update_service(services[host], disabled=True,
                             disabled_reason="benchmark: evacuated")
    return {"migrated": migrated, "hosts_not_empty": left}


def _profiled(action: Callable[[], dict[str, Any]], lines: int = 25,
              dump_to: str | None = None
              ) -> tuple[dict[str, Any], list[str], dict[str, float]]:
    """Run ``action`` with every thread under cProfile (thread CPU time);
    its result, the top ``lines`` functions by own time, and the own time
    by where the code lives (:func:`_shares`). The statistics are also
    written to ``dump_to`` if given."""
    with common.every_thread_profiled(time.thread_time) as (main, profiles):
        result = main.runcall(action)
    stream = io.StringIO()
    stats = pstats.Stats(main, stream=stream)
    for profile in profiles:
        stats.add(profile)
    if dump_to is not None:
        stats.dump_stats(dump_to)
    shares = _shares(stats)
    total = sum(shares.values()) or 1.0
    stream.write("Own CPU time by where the code lives: " + ", ".join(
        f"{where} {100 * spent / total:.0f} %"
        for where, spent in sorted(shares.items(), key=lambda i: -i[1])
        if spent / total >= 0.01) + "\n")
    stats.sort_stats("tottime").print_stats(lines)
    return result, stream.getvalue().splitlines(), shares


def _where(filename: str) -> str:
    """Where the code of ``filename`` lives: a package
    (``site-packages/NAME``), this project (its in-memory fake apart), a
    standard library module, or built-in functions."""
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    if "nova_migrate_flows/compute/fake" in filename:
        return "the fake Nova"
    if "nova_migrate_flows/" in filename:
        return "nova_migrate_flows"
    if filename.startswith(("~", "<")):
        return "built-in functions"
    module = filename.split("/lib/python")[-1].split("/", 1)[-1]
    return "stdlib " + module.rsplit(".", 1)[0]


def _memory_profiled(action: Callable[[], dict[str, Any]], lines: int = 12
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``action`` under tracemalloc; its result, and the memory the
    run held at the largest of its samples (one a second) by where the
    code that allocated it lives, and the ``lines`` largest lines."""
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    largest: dict[str, Any] = {"traced": 0, "snapshot": None}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            traced, _ = tracemalloc.get_traced_memory()
            if traced > largest["traced"]:
                largest.update(traced=traced,
                               snapshot=tracemalloc.take_snapshot())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
        snapshot = largest["snapshot"] or tracemalloc.take_snapshot()
        tracemalloc.stop()
    by_place: dict[str, int] = {}
    for stat in snapshot.compare_to(before, "filename"):
        place = _where(stat.traceback[0].filename)
        by_place[place] = by_place.get(place, 0) + stat.size_diff
    top = [str(stat) for stat in snapshot.compare_to(before, "lineno")[
        :lines]]
    return result, {"held_mb": largest["traced"] / 1e6,
                    "by_place_mb": {k: v / 1e6 for k, v in
                                    by_place.items() if v > 0},
                    "top_lines": top}


def _shares(stats: pstats.Stats) -> dict[str, float]:
    """Own CPU time by package (``site-packages/NAME``), this project
    (its in-memory fake apart), the standard library module, or built-in
    functions."""
    shares: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, _, own, _, _) in raw.items():
        where = _where(filename)
        shares[where] = shares.get(where, 0.0) + own
    return shares


def measure(contender: str, servers: int, hosts: int, targets: int,
            profile: bool = False, memory: bool = False,
            postgresql: str | None = None) -> dict[str, Any]:
    """One measurement, in a worker process (``runner+postgresql`` in the
    database ``postgresql``, emptied first); under cProfile with
    ``profile``, under tracemalloc with ``memory``."""

    cloud, sources = _cloud(servers, hosts, targets)
    conf = _conf()
    request = request_mod.build_request(
        conf, request_mod.Operation.HOST_EVACUATE_LIVE, hosts=sources)
    by_host = {host: [s.id for s in cloud.servers.values()
                      if s.host == host] for host in sources}
    with tempfile.TemporaryDirectory(prefix="nmf-bench-b2-") as tmp:
        url = {"runner+sqlite": f"sqlite:///{tmp}/runs.sqlite",
               POSTGRESQL: postgresql}.get(contender)
        backend = _backend(conf, url)
        # The runner, with the backend of this contender (none for
        # ``runner``).
        runner = functools.partial(_run_runner, conf, cloud, request,
                                   backend)
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "runner": runner,
            "runner+sqlite": runner,
            POSTGRESQL: runner,
            "single-flow": lambda: _run_single_flow(conf, cloud, request),
            "loop": lambda: _run_loop(cloud, sources),
        }
        start_rss = common.current_rss_mb()
        wall, cpu = time.monotonic(), time.process_time()
        top: list[str] = []
        shares: dict[str, float] = {}
        held: dict[str, Any] = {}
        if profile:
            outcome, top, shares = _profiled(actions[contender])
        elif memory:
            outcome, held = _memory_profiled(actions[contender])
        else:
            outcome = actions[contender]()
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    return dict(
        outcome,
        wall_s=wall,
        cpu_s=cpu,
        start_rss_mb=start_rss,
        peak_rss_mb=common.peak_rss_mb(),
        atoms=_atoms(conf, request, by_host) if contender != "loop" else 0,
        fake_calls=sum(cloud.calls.values()),
        profile=top,
        shares=shares,
        memory=held,
    )


# -- in the benchmark process ------------------------------------------


def run(quick: bool, profile: bool = False,
        postgresql: str | None = None) -> common.Section:
    """Measure every contender at every size (``runner+postgresql`` too
    when ``postgresql`` names a database it may empty); compare to the
    loop."""
    shape = QUICK if quick else FULL
    contenders = CONTENDERS + ((POSTGRESQL,) if postgresql else ())
    section = common.Section(
        "b2", "B2: scale of the orchestrator (FakeCompute, steps=0)",
        ["servers", "contender", "wall_s", "cpu_s", "cpu_ms_per_server",
         "x_loop_cpu", "orch_cpu_ms_per_server", "persist_ms_per_task",
         "peak_rss_mb", "atoms", "migrated", "hosts_not_empty"],
    )
    by_key: dict[tuple[int, str], dict[str, Any]] = {}
    for servers in shape["sizes"]:
        for contender in contenders:
            cap = {"single-flow": shape["single_flow_cap"],
                   "runner+sqlite": shape["sqlite_cap"],
                   POSTGRESQL: shape["sqlite_cap"]}.get(contender)
            if cap is not None and servers > cap:
                continue
            figures = common.in_subprocess(
                "b2_scale", "measure", TIMEOUT, contender=contender,
                servers=servers, hosts=shape["hosts"],
                targets=shape["targets"], postgresql=postgresql)
            by_key[(servers, contender)] = figures
    for (servers, contender), figures in by_key.items():
        row: dict[str, Any] = {"servers": servers, "contender": contender}
        if "error" in figures:
            row["migrated"] = figures["error"]
            section.rows.append(row)
            continue
        loop = by_key.get((servers, "loop"), {})
        plain = by_key.get((servers, "runner"), {})
        row.update({k: figures.get(k) for k in (
            "wall_s", "cpu_s", "peak_rss_mb", "atoms", "migrated",
            "hosts_not_empty")})
        row["cpu_ms_per_server"] = 1000 * figures["cpu_s"] / servers
        row["x_loop_cpu"] = common.ratio(figures["cpu_s"],
                                         loop.get("cpu_s"))
        if contender != "loop" and "cpu_s" in loop:
            row["orch_cpu_ms_per_server"] = (
                1000 * (figures["cpu_s"] - loop["cpu_s"]) / servers)
        if contender in RECORDED and "cpu_s" in plain:
            row["persist_ms_per_task"] = (
                1000 * (figures["cpu_s"] - plain["cpu_s"])
                / figures["atoms"])
        section.rows.append(row)
    section.rows.sort(key=lambda r: (r["servers"],
                                     contenders.index(r["contender"])))
    _goals(section, shape, by_key)
    if profile:
        _profile(section, shape, [c for c in RECORDED if c in contenders],
                 postgresql)
    return section


def _profile(section: common.Section, shape: dict[str, Any],
             recorded: list[str], postgresql: str | None) -> None:
    """Notes on where the runner's CPU time and memory go, and where the
    persistence of each ``recorded`` contender adds CPU time, at the
    smallest size."""
    size = shape["sizes"][0]

    def measured(contender: str, **how: Any) -> dict[str, Any]:
        return common.in_subprocess(
            "b2_scale", "measure", TIMEOUT * 3, contender=contender,
            servers=size, hosts=shape["hosts"], targets=shape["targets"],
            postgresql=postgresql, **how)

    plain = measured("runner", profile=True)
    section.notes.append(
        f"cProfile (thread CPU time) of the runner at {size} "
        "servers, top functions by own time:\n"
        + "\n".join(plain.get("profile") or [plain.get("error", "")]))
    for contender in recorded:
        figures = measured(contender, profile=True)
        if not figures.get("shares") or not plain.get("shares"):
            section.notes.append(f"cProfile of {contender}: "
                                 f"{figures.get('error', 'no profile')}")
            continue
        section.notes.append(_persistence_note(contender, size, plain,
                                               figures))
    held = measured("runner", memory=True)
    section.notes.append(_memory_note(size, held))


def _persistence_note(contender: str, size: int, plain: dict[str, Any],
                      recorded: dict[str, Any]) -> str:
    """Where ``contender`` spends the CPU time the runner does not: the
    difference of their profiles, by where the code lives."""
    places = set(plain["shares"]) | set(recorded["shares"])
    extra = {place: recorded["shares"].get(place, 0.0)
             - plain["shares"].get(place, 0.0) for place in places}
    total = sum(extra.values())
    atoms = recorded["atoms"]
    shown = [f"{place} {1000 * spent / atoms:.2f}"
             for place, spent in sorted(extra.items(), key=lambda i: -i[1])
             if total > 0 and spent / total >= 0.02]
    return (f"Where {contender} spends more CPU than the runner at {size} "
            f"servers (both under cProfile, thread CPU time; ms per task, "
            f"{atoms} tasks): " + ", ".join(shown)
            + f"; in all {1000 * total / atoms:.2f} ms per task under the "
            "profiler. Top functions by own time:\n"
            + "\n".join(recorded["profile"][:18]))


def _memory_note(size: int, figures: dict[str, Any]) -> str:
    """Where the runner's memory goes, from its tracemalloc measurement."""
    held = figures.get("memory") or {}
    if not held:
        return f"tracemalloc of the runner: {figures.get('error', 'none')}"
    atoms = figures["atoms"]
    total = sum(held["by_place_mb"].values()) or 1.0
    places = ", ".join(
        f"{place} {mb:.0f} MB ({100 * mb / total:.0f} %)"
        for place, mb in sorted(held["by_place_mb"].items(),
                                key=lambda i: -i[1])
        if mb / total >= 0.02)
    return (f"tracemalloc of the runner at {size} servers: "
            f"{held['held_mb']:.0f} MB allocated by the run and still held "
            f"at its largest sample (one a second), "
            f"{1000 * held['held_mb'] / atoms:.1f} KB per task ({atoms} "
            f"tasks), by where the code that allocated it lives: {places}. "
            "Largest lines:\n" + "\n".join(held["top_lines"]))


def _goals(section: common.Section, shape: dict[str, Any],
           by_key: dict[tuple[int, str], dict[str, Any]]) -> None:
    small, large = shape["sizes"][0], shape["sizes"][-1]
    runner = by_key.get((large, "runner"), {})
    loop = by_key.get((large, "loop"), {})
    recorded = min(large, shape["sqlite_cap"])
    plain = by_key.get((recorded, "runner"), {})
    first = by_key.get((small, "runner"), {})
    size = large / small
    if "cpu_s" in runner and "cpu_s" in loop:
        total = 1000 * runner["cpu_s"] / large
        orchestrator = 1000 * (runner["cpu_s"] - loop["cpu_s"]) / large
        section.goals.append(common.Goal(
            f"<= {GOAL_CPU_MS:.0f} ms orchestrator CPU per server at "
            f"{large} servers, no persistence",
            orchestrator <= GOAL_CPU_MS,
            f"{orchestrator:.2f} ms (runner {total:.2f} ms minus the "
            f"loop's {1000 * loop['cpu_s'] / large:.2f} ms of fake calls)",
        ))
        section.goals.append(common.Goal(
            f"<= {GOAL_PEAK_MB:.0f} MB peak RSS at {large} servers",
            runner["peak_rss_mb"] <= GOAL_PEAK_MB,
            f"{runner['peak_rss_mb']:.0f} MB (the loop, same fake cloud: "
            f"{loop['peak_rss_mb']:.0f} MB)",
        ))
    if "cpu_s" in runner and "cpu_s" in first and large > small:
        cpu_growth = runner["cpu_s"] / first["cpu_s"]
        wall_growth = runner["wall_s"] / first["wall_s"]
        section.goals.append(common.Goal(
            f"growth within {GOAL_GROWTH:.0f}x from {small} to {large} "
            f"servers ({size:.0f}x the work)",
            max(cpu_growth, wall_growth) <= GOAL_GROWTH,
            f"CPU {cpu_growth:.1f}x, wall {wall_growth:.1f}x",
        ))
    for contender in RECORDED:
        figures = by_key.get((recorded, contender), {})
        if "cpu_s" not in figures or "cpu_s" not in plain:
            continue
        per_task = 1000 * (figures["cpu_s"] - plain["cpu_s"]) / figures[
            "atoms"]
        wall_per_task = 1000 * (figures["wall_s"] - plain["wall_s"]) / (
            figures["atoms"])
        section.goals.append(common.Goal(
            f"<= {GOAL_PERSISTENCE_MS:.0f} ms persistence cost per task at "
            f"{recorded} servers, {contender.split('+')[1]}",
            per_task <= GOAL_PERSISTENCE_MS,
            f"{per_task:.2f} ms CPU per task ({wall_per_task:.2f} ms wall) "
            f"over {figures['atoms']} tasks",
        ))
    if large > shape["single_flow_cap"]:
        section.notes.append(
            f"single-flow is capped at {shape['single_flow_cap']} servers: "
            "TaskFlow compiles a flow in time quadratic in its atoms.")
    if large > shape["sqlite_cap"]:
        section.notes.append(
            f"runner+sqlite (and runner+postgresql) are capped at "
            f"{shape['sqlite_cap']} servers, to keep the run short: they "
            "take several times the runner's time.")
    section.notes.append(
        "orch_cpu_ms_per_server = (contender CPU - loop CPU) / servers: "
        "the loop makes the same fake calls, so the difference is the "
        "orchestrator's own cost; persist_ms_per_task = (runner+sqlite or "
        "runner+postgresql CPU - runner CPU) / atoms (this process's CPU: "
        "PostgreSQL's own server is not counted, SQLite works in the "
        "process).")
