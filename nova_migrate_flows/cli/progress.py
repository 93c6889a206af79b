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
"""Progress of a run, for the person watching it.

On a terminal, lines for each server as it starts and ends, under one
status line that is redrawn: per host done/failed/remaining, and each
migration in flight with its percentage and bytes. Elsewhere (a pipe, a
log collector) the INFO log lines are the progress and this prints nothing.
"""

import sys
import threading
import time
from typing import Any, TextIO

from nova_migrate_flows.compute import models

GIB = 1024 ** 3


class Progress:
    """Subscribes to a run's events and draws them on a terminal."""

    def __init__(self, out: TextIO | None = None, redraw: float = 0.5):
        self._out = out or sys.stderr
        self._lock = threading.Lock()
        self._planned: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._failed: dict[str, int] = {}
        self._flight: dict[str, dict[str, Any]] = {}
        self._status_shown = False
        self._redraw = redraw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="progress")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._clear_status()

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            getattr(self, "_on_" + event.replace(".", "_"),
                    lambda _: None)(data)

    # -- events ------------------------------------------------------------

    def _on_plan_ready(self, data: dict[str, Any]) -> None:
        for entry in data["plan"].values():
            if entry["action"] != "skip":
                host = entry["server"].get("host") or "?"
                self._planned[host] = self._planned.get(host, 0) + 1

    def _on_host_disabled(self, data: dict[str, Any]) -> None:
        self._print(f"{data['host']}: compute service disabled")

    def _on_server_started(self, data: dict[str, Any]) -> None:
        self._flight[data["server_id"]] = dict(data, percent=None,
                                               started=time.monotonic())
        target = data.get("target") or "scheduler's choice"
        self._print(f"{data['source']}: {data['action']} {data['name']} -> "
                    f"{target}")

    def _on_migration_progress(self, data: dict[str, Any]) -> None:
        flight = self._flight.get(data["server_id"])
        if flight is not None:
            migration = models.Migration.from_dict(data["migration"])
            flight["percent"] = migration.percent
            flight["bytes"] = (migration.bytes_processed,
                               migration.bytes_total)

    def _on_server_done(self, data: dict[str, Any]) -> None:
        outcome = data["outcome"]
        self._flight.pop(outcome["server"], None)
        host = outcome.get("source") or "?"
        if outcome["status"] == "migrated":
            self._done[host] = self._done.get(host, 0) + 1
            took = outcome.get("duration_s")
            self._print(
                f"{host}: OK {outcome['name']} -> {outcome['destination']}"
                + (f" in {took:.1f} s" if took is not None else "")
            )
        elif outcome["status"] == "failed":
            self._failed[host] = self._failed.get(host, 0) + 1
            self._print(f"{host}: FAILED {outcome['name']}: "
                        f"{outcome['reason']}")

    # -- drawing -----------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self._redraw):
            with self._lock:
                self._draw_status()

    def _status(self) -> str:
        parts = []
        for host, planned in sorted(self._planned.items()):
            done = self._done.get(host, 0)
            failed = self._failed.get(host, 0)
            parts.append(f"{host} {done}/{planned} done"
                         + (f" {failed} failed" if failed else ""))
        for flight in self._flight.values():
            percent = flight.get("percent")
            moved, total = flight.get("bytes") or (None, None)
            text = f"{flight['name']}"
            if percent is not None:
                text += f" {percent:.0f}%"
                if moved is not None and total:
                    text += f" {moved / GIB:.1f}/{total / GIB:.1f} GiB"
            else:
                text += f" {time.monotonic() - flight['started']:.0f}s"
            parts.append(text)
        return " | ".join(parts)

    def _draw_status(self) -> None:
        status = self._status()
        if not status:
            return
        self._out.write("\r\x1b[K" + status[:200])
        self._out.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self._out.write("\r\x1b[K")
            self._out.flush()
            self._status_shown = False

    def _print(self, line: str) -> None:
        self._clear_status()
        self._out.write(line + "\n")
        self._out.flush()
