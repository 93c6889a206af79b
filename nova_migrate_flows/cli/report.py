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
"""How a run's result reads on a terminal: the summary table of the
servers and hosts, or the plan of a dry run. ``--format json`` prints the
result's own JSON form (:meth:`~nova_migrate_flows.engine.result.RunResult.
to_json`) instead."""

from nova_migrate_flows.cli import output
from nova_migrate_flows.engine import result as result_mod
from nova_migrate_flows.request import Operation

SUMMARY_HEADERS = ("Server", "Name", "From", "To", "Result", "Duration",
                   "Reason")
PLAN_HEADERS = ("Server", "Name", "Host", "Flavor", "State", "Action",
                "Target", "Preflight")


def print_result(result: result_mod.RunResult, fmt: str) -> None:
    if fmt == "json":
        output.print_json(result.to_json())
        return
    if result.dry_run:
        _print_plan(result)
        return
    output.table(SUMMARY_HEADERS, [
        (o["server"], o["name"], o["source"], o["destination"],
         o["status"], o["duration_s"], o["reason"])
        for o in result.outcomes
    ])
    if result.operation == Operation.MAINTENANCE_ROLL:
        output.table(("Host", "Batch", "Step", "Done", "Moved away",
                      "Moved back", "Reason"), [
            (h["host"], h["batch"], h["step"], "yes" if h["done"] else "NO",
             h["moved_away"], h["moved_back"], h["reason"])
            for h in result.hosts
        ])
    elif result.operation == Operation.MAINTENANCE_EXIT:
        output.table(("Host", "Service", "Returned", "Reason"), [
            (h["host"], h.get("service"), h.get("returned"), h.get("reason"))
            for h in result.hosts
        ])
    elif result.hosts:
        output.table(("Host", "Empty", "Service", "Left", "Reason"), [
            (h["host"], "yes" if h.get("empty") else "NO",
             h.get("service"), [s["name"] for s in h.get("left", [])],
             h.get("reason"))
            for h in result.hosts
        ])
    summary = (
        f"{result.count('migrated')} migrated, {result.count('failed')} "
        f"failed, {result.count('skipped')} skipped in "
        f"{result.elapsed_s:.1f} s"
    )
    if result.requests is not None:
        summary += f"; {result.requests} Nova API requests"
    if result.interrupted:
        summary += "; INTERRUPTED"
    print(summary + f" (run {result.run_id})")


def _print_plan(result: result_mod.RunResult) -> None:
    rows = []
    for row in (result_mod.plan_row(e) for e in (result.plan or {}).values()):
        checks = [
            f"{name}: {check['status']}"
            + (f" ({check['message']})"
               if check["status"] != "pass" and check["message"] else "")
            for name, check in row["checks"].items()
            if check["status"] != "pass"
        ] or ["all passed"]
        rows.append((row["server"], row["name"], row["host"], row["flavor"],
                     row["state"], row["action"], row["target"],
                     "; ".join(checks)))
    output.table(PLAN_HEADERS, rows)
    entries = list((result.plan or {}).values())
    refused = sum(1 for e in entries if e["refused"])
    moving = sum(1 for e in entries if e["action"] != "skip")
    skipped = len(entries) - moving - refused
    print(f"Dry run: {moving} server(s) would move, {skipped} skipped"
          + (f"; preflight REFUSES {refused} (the operation would be "
             "refused)" if refused else "")
          + "; nothing was changed.")
