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
"""B3: start-up and footprint.

How long ``nova-migrate-flow`` takes from its start to its first compute
API request (``migration-list`` against the sandbox: the sandbox's Nova
logs when each request began), how long its network-free commands take,
and what importing the library costs a service that embeds it, beside the
same for ``openstack`` (python-openstackclient, installed in a venv of its
own: it is no requirement of this project).
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import common

from nova_migrate_flows.sandbox import constants, control

#: Where ``benchmarks/run.py`` looks for ``openstack`` when it is not on
#: PATH (``python3 -m venv /tmp/nmf-bench-osc &&
#: /tmp/nmf-bench-osc/bin/pip install python-openstackclient``).
OPENSTACK_VENV = "/tmp/nmf-bench-osc/bin/openstack"
NMF = os.path.join(os.path.dirname(sys.executable), "nova-migrate-flow")
TIMEOUT = 120.0
LIBRARY = "nova_migrate_flows.api"

_REQUEST_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*nova\.api\.openstack\."
    r"requestlog .*\"(\w+ \S+)\" status: \d+ .* time: ([\d.]+)")


def openstack_command() -> str | None:
    """The ``openstack`` to compare with, if one is installed."""
    return shutil.which("openstack") or (
        OPENSTACK_VENV if os.access(OPENSTACK_VENV, os.X_OK) else None)


def _wall(command: Sequence[str], repeat: int,
          env: dict[str, str] | None = None) -> float | None:
    """Median seconds ``command`` takes; None when it fails."""
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, env=env,
                              timeout=TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            return None
        times.append(time.monotonic() - start)
    return common.median(times)


def _import_time(python: str, module: str) -> dict[str, Any]:
    """``python -X importtime -c "import module"``: total import time
    (sum of every module's own time), modules loaded, and whether eventlet
    came along."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c",
         f"import sys, {module}; print(len(sys.modules), "
         "'eventlet' in sys.modules)"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    total_us = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            own = line.split(":", 1)[1].split("|")[0].strip()
            if own.isdigit():
                total_us += int(own)
    modules, eventlet = done.stdout.split()
    return {"import_s": total_us / 1e6, "modules": int(modules),
            "eventlet": eventlet == "True"}


def first_request(command: Sequence[str], sandbox: control.SandboxInfo,
                  env: dict[str, str] | None = None
                  ) -> tuple[float | None, float | None]:
    """Seconds from starting ``command`` to the start of the first compute
    request the sandbox logged, and until the command ended."""
    moments = timeline(command, sandbox, env)
    return moments.get("first_request_s"), moments.get("wall_s")


def timeline(command: Sequence[str], sandbox: control.SandboxInfo,
             env: dict[str, str] | None = None,
             server_id: str | None = None) -> dict[str, float]:
    """Run ``command``; seconds from its start to: the start of its first
    compute request (``first_request_s``), the end of its first ``POST``
    (``post_s``), Nova starting and finishing the live migration of
    ``server_id`` (``nova_start_s``, ``nova_end_s``: the sandbox's log),
    and its exit (``wall_s``; nothing when the command failed)."""
    offset = os.path.getsize(sandbox.log_file)
    start_epoch = time.time()
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, env=env,
                          timeout=TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)
    wall = time.monotonic() - start
    if done.returncode != 0:
        return {}
    moments = {"wall_s": wall}
    # The server flushes each log line as it writes it; give it a moment.
    time.sleep(0.2)
    with open(sandbox.log_file, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        for line in log:
            request = _REQUEST_LINE.match(line)
            if request is not None:
                ended = common.log_epoch(request.group(1)) - start_epoch
                moments.setdefault("first_request_s",
                                   ended - float(request.group(3)))
                if request.group(2).startswith("POST "):
                    moments.setdefault("post_s", ended)
                continue
            nova = common.NOVA_LIVE_LINE.match(line)
            if nova is not None and nova.group(2) == server_id:
                key = ("nova_start_s" if nova.group(3).startswith("Live")
                       else "nova_end_s")
                moments.setdefault(
                    key, common.log_epoch(nova.group(1)) - start_epoch)
    return moments


def run(quick: bool, sandbox: control.SandboxInfo | None,
        openstack: str | None = None) -> common.Section:
    """Start-up of the command line and import of the library, beside
    ``openstack``."""
    repeat = 1 if quick else 3
    openstack = openstack or openstack_command()
    section = common.Section(
        "b3", "B3: start-up and footprint",
        ["command", "wall_s", "x_openstack_version", "first_request_s",
         "import_s", "modules", "eventlet"],
    )
    floor = _wall([sys.executable, "-c", "pass"], repeat)
    baseline = (_wall([openstack, "--version"], repeat) if openstack
                else None)
    rows: list[dict[str, Any]] = [
        {"command": "python -c pass", "wall_s": floor},
        dict({"command": f"python -c 'import {LIBRARY}'",
              "wall_s": _wall([sys.executable, "-c", f"import {LIBRARY}"],
                              repeat)},
             **_import_time(sys.executable, LIBRARY)),
        {"command": "nova-migrate-flow --version",
         "wall_s": _wall([NMF, "--version"], repeat)},
        {"command": "nova-migrate-flow list-tasks",
         "wall_s": _wall([NMF, "list-tasks"], repeat)},
    ]
    if sandbox is not None:
        first, wall = first_request(
            [NMF, "--config-file", sandbox.config_file, "migration-list"],
            sandbox)
        rows.append({"command": "nova-migrate-flow migration-list "
                     "(sandbox)", "wall_s": wall,
                     "first_request_s": first})
    if openstack:
        python = os.path.join(os.path.dirname(openstack), "python")
        rows.append(dict({"command": "openstack --version",
                          "wall_s": baseline},
                         **_import_time(python, "openstackclient.shell")))
        if sandbox is not None:
            env = dict(os.environ, OS_CLIENT_CONFIG_FILE=sandbox.clouds_yaml)
            first, wall = first_request(
                [openstack, "--os-cloud", constants.CLOUD_ADMIN, "server",
                 "migration", "list"], sandbox, env)
            rows.append({"command": "openstack server migration list "
                         "(sandbox)", "wall_s": wall,
                         "first_request_s": first})
    else:
        section.notes.append(
            "openstack not found: install python-openstackclient into "
            f"{os.path.dirname(os.path.dirname(OPENSTACK_VENV))} for the "
            "baseline.")
    for row in rows:
        row["x_openstack_version"] = common.ratio(row.get("wall_s"),
                                                  baseline)
    section.rows = rows
    section.notes += [
        "first_request_s: from starting the command to the start of its "
        "first compute API request, as the sandbox's Nova logged it "
        "(token and endpoint discovery included).",
        "import_s: the sum of every module's own time under python -X "
        "importtime (the library's row: import nova_migrate_flows.api; "
        "openstack's row: import openstackclient.shell); wall_s is the "
        f"median of {repeat} run(s) of the whole process.",
    ]
    if sandbox is None:
        section.notes.append("No sandbox: migration-list not measured.")
    return section
