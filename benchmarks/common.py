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
"""What every benchmark shares: results, goals, the machine, subprocesses.

A benchmark returns a :class:`Section`: rows of figures (one per scenario
and contender, each with its ratio to the baseline measured in the same
run), the goals it checks, and notes that explain the figures. Measurements
that must not share a process (peak memory, imports) run in a fresh
interpreter through :func:`in_subprocess`.
"""

import contextlib
import cProfile
import dataclasses
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: The script that runs one measurement in a fresh interpreter.
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "worker.py")
#: The repository the benchmarks measure.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The line before the JSON document a worker prints.
RESULT_MARKER = "--- nmf-benchmark-result ---"


@dataclasses.dataclass
class Goal:
    """One goal quoted in the issue, and whether this run met it."""

    text: str
    met: bool | None
    evidence: str

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[
            self.met]


@dataclasses.dataclass
class Section:
    """The figures of one benchmark."""

    key: str
    title: str
    #: Column keys of ``rows``, in display order.
    columns: list[str]
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    goals: list[Goal] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: Figures for the JSON document only (too long for the table).
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "goals": [dict(dataclasses.asdict(g), verdict=g.verdict)
                      for g in self.goals],
            "notes": self.notes,
            "details": self.details,
            "seconds": round(self.seconds, 1),
        }


def machine() -> dict[str, Any]:
    """What the benchmarks ran on."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kib / 1024 ** 2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": (commit or "unknown") + ("+dirty" if dirty else ""),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident memory now, in MB."""
    with open("/proc/self/statm", encoding="utf-8") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 ** 2


def in_subprocess(module: str, function: str, timeout: float,
                  **kwargs: Any) -> dict[str, Any]:
    """Run ``module.function(**kwargs)`` in a fresh interpreter.

    Returns what it returned (a JSON document), or ``{"error": ...}``
    when it failed or ran out of ``timeout`` seconds.
    """
    command = [sys.executable, WORKER, module, function, json.dumps(kwargs)]
    # The worker's temporary files go in a directory removed here, even
    # when the worker had to be killed.
    with tempfile.TemporaryDirectory(prefix="nmf-bench-") as tmp:
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, TMPDIR=tmp))
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish in {timeout:.0f} s"}
    out = done.stdout
    if done.returncode != 0 or RESULT_MARKER not in out:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(out.split(RESULT_MARKER, 1)[1])
    return result


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``, or None when either is missing or zero."""
    if not value or not baseline:
        return None
    return value / baseline


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def cell(value: Any) -> str:
    """A figure as the table shows it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of ``rows`` under ``columns``."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells])
              for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths,
                                                    strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule] + [line(r) for r in cells])


def render(section: Section) -> str:
    """A section as plain text: title, table, goals, notes."""
    parts = [f"== {section.title} ({section.seconds:.0f} s)",
             table(section.columns, section.rows)]
    for goal in section.goals:
        parts.append(f"  [{goal.verdict}] {goal.text}: {goal.evidence}")
    for note in section.notes:
        parts.append(f"  - {note}")
    return "\n".join(parts)


def rst(section: Section) -> str:
    """A section as reStructuredText: a list-table, then goals and
    notes (for ``doc/source/benchmarks.rst``)."""
    lines = [".. list-table:: " + section.title, "   :header-rows: 1", ""]
    for index, values in enumerate(
            [list(section.columns)]
            + [[cell(row.get(c)) for c in section.columns]
               for row in section.rows]):
        for position, value in enumerate(values):
            bullet = "   * - " if position == 0 else "     - "
            lines.append(bullet + (f"``{value}``" if index == 0 else
                                   value.replace("|", "\\|")))
    lines.append("")
    for goal in section.goals:
        lines.append(f"* **{goal.verdict}**: {goal.text}: {goal.evidence}")
    if section.goals:
        lines.append("")
    return "\n".join(lines)


#: A line of the sandbox's log where Nova's compute starts or finishes a
#: live migration: (local time, server id, what).
NOVA_LIVE_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*\[instance: ([0-9a-f-]{36})"
    r"\] (Live migration to \S+ started|Migrating instance to \S+ finished "
    r"successfully)")


def log_epoch(stamp: str) -> float:
    """A time of the sandbox's log (local time, milliseconds) as an epoch."""
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + \
        float("0" + stamp[19:])


@contextlib.contextmanager
def every_thread_profiled(
    clock: Callable[[], float],
) -> Iterator[tuple[cProfile.Profile, list[cProfile.Profile]]]:
    """While inside, every thread started runs under a cProfile of its own
    timed by ``clock``; yields a profile for the caller's thread (not
    enabled: the caller runs or enables it) and the list the threads'
    profiles are added to."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(clock)
        with lock:
            profiles.append(profile)
        profile.runcall(original, self)

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield cProfile.Profile(clock), profiles
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
