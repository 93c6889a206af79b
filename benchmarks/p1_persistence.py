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
"""P1: what recording a flow costs per task.

The same flow (N no-op tasks in one unordered flow, run by a parallel
engine on a given thread pool) with no persistence (the baseline), with
TaskFlow's stock ``impl_sqlalchemy.SQLAlchemyBackend``, with ours,
:class:`~nova_migrate_flows.engine.persistence.FastSQLBackend`, and with
ours fenced as a run writes through it
(:class:`~nova_migrate_flows.engine.fencing.FencedBackend`: one read of the
run's owner before each write), all on a SQLite file. Each measurement runs
in a fresh interpreter, so that peak memory is its own.
"""

import concurrent.futures
import contextlib
import os
import tempfile
import time
from typing import Any

import common
import taskflow.engines
from taskflow import task
from taskflow.patterns import unordered_flow
from taskflow.persistence import models
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.utils import persistence_utils

from nova_migrate_flows.engine import fencing, persistence

GOAL_MS = 5.0
FULL = [300, 1000]
QUICK = [50, 100]
BACKENDS = ("none", "stock", "fast", "fenced")
#: The owner token of the logbook of the fenced measurement.
TOKEN = "p1"
#: Threads of the engine's executor.
WORKERS = 16
TIMEOUT = 900.0


class NoOp(task.Task):
    """Does nothing: only the engine and the persistence cost."""

    def execute(self) -> None:
        """Nothing."""


# -- in the worker process -----------------------------------------------


def measure(backend: str, tasks: int, workers: int) -> dict[str, Any]:
    """Run ``tasks`` no-op tasks with ``backend``; wall, CPU, memory."""
    flow = unordered_flow.Flow("no-ops")
    flow.add(*[NoOp(name=f"no-op-{i}") for i in range(tasks)])
    with tempfile.TemporaryDirectory(prefix="nmf-bench-p1-") as tmp:
        url = "sqlite:///" + os.path.join(tmp, "p1.sqlite")
        store: Any = None
        if backend == "stock":
            store = impl_sqlalchemy.SQLAlchemyBackend({"connection": url})
        elif backend in ("fast", "fenced"):
            store = persistence.FastSQLBackend({"connection": url})
        if store is not None:
            with contextlib.closing(store.get_connection()) as connection:
                connection.upgrade()
        # The fenced run's logbook holds its owner token before it starts.
        book = models.LogBook("p1")
        book.meta = {"owner": {"token": TOKEN}}
        if backend == "fenced":
            with contextlib.closing(store.get_connection()) as connection:
                connection.save_logbook(book)
            store = fencing.FencedBackend(store, book.uuid, TOKEN)
        start_rss = common.current_rss_mb()
        with concurrent.futures.ThreadPoolExecutor(workers) as executor:
            wall, cpu = time.monotonic(), time.process_time()
            detail = None
            if store is not None:
                detail = persistence_utils.create_flow_detail(
                    flow, book=book, backend=store)
            engine = taskflow.engines.load(flow, flow_detail=detail,
                                           book=book, backend=store,
                                           engine="parallel",
                                           executor=executor)
            engine.run()
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        if store is not None:
            store.close()
    return {"wall_s": wall, "cpu_s": cpu, "start_rss_mb": start_rss,
            "peak_rss_mb": common.peak_rss_mb()}


# -- in the benchmark process ------------------------------------------


def run(quick: bool) -> common.Section:
    """Each backend beside no persistence, at each flow size."""
    sizes = QUICK if quick else FULL
    section = common.Section(
        "p1", f"P1: persistence cost per task (SQLite, parallel engine, "
        f"{WORKERS} threads)",
        ["tasks", "backend", "wall_s", "ms_per_task", "persist_ms_per_task",
         "x_none", "cpu_s", "peak_rss_mb", "rss_growth_mb"],
    )
    figures = {
        (tasks, backend): common.in_subprocess(
            "p1_persistence", "measure", TIMEOUT, backend=backend,
            tasks=tasks, workers=WORKERS)
        for tasks in sizes for backend in BACKENDS
    }
    for (tasks, backend), data in figures.items():
        row: dict[str, Any] = {"tasks": tasks, "backend": backend}
        if "error" in data:
            row["wall_s"] = data["error"]
            section.rows.append(row)
            continue
        baseline = figures[(tasks, "none")]
        row.update(
            wall_s=data["wall_s"],
            ms_per_task=1000 * data["wall_s"] / tasks,
            x_none=common.ratio(data["wall_s"], baseline.get("wall_s")),
            cpu_s=data["cpu_s"],
            peak_rss_mb=data["peak_rss_mb"],
            rss_growth_mb=data["peak_rss_mb"] - data["start_rss_mb"],
        )
        if backend != "none" and "wall_s" in baseline:
            row["persist_ms_per_task"] = (
                1000 * (data["wall_s"] - baseline["wall_s"]) / tasks)
        section.rows.append(row)
    _goal(section, sizes, figures)
    section.notes.append(
        "persist_ms_per_task = (wall with the backend - wall without) / "
        "tasks; rss_growth_mb = peak RSS - RSS before the engine was "
        "loaded.")
    return section


def _goal(section: common.Section, sizes: list[int],
          figures: dict[tuple[int, str], dict[str, Any]]) -> None:
    small, large = sizes[0], sizes[-1]
    fast_small = figures[(small, "fenced")]
    fast_large = figures[(large, "fenced")]
    none_large = figures[(large, "none")]
    if any("error" in f for f in (fast_small, fast_large, none_large)):
        section.goals.append(common.Goal(
            "ours (fenced) <= 5 ms per task with flat memory", None,
            "a measurement failed"))
        return
    per_task = 1000 * fast_large["wall_s"] / large
    growth = [
        (f["peak_rss_mb"] - f["start_rss_mb"]) / n
        for n, f in ((small, fast_small), (large, fast_large))
    ]
    baseline_growth = (none_large["peak_rss_mb"]
                       - none_large["start_rss_mb"]) / large
    # Flat: no more memory per task in the larger flow than in the
    # smaller (within 25 %, the noise of RSS sampling), and no more than
    # 2x what the engine itself needs per task.
    flat = growth[1] <= 1.25 * growth[0] and growth[1] <= max(
        2 * baseline_growth, 0.05)
    section.goals.append(common.Goal(
        f"ours (fenced) <= {GOAL_MS:.0f} ms per task with flat memory",
        per_task <= GOAL_MS and flat,
        f"{per_task:.2f} ms per task at {large} tasks; memory "
        f"{1024 * growth[0]:.0f} KB/task at {small}, "
        f"{1024 * growth[1]:.0f} KB/task at {large} (no persistence: "
        f"{1024 * baseline_growth:.0f} KB/task)",
    ))
