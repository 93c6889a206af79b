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
"""Asynchronous actions: the operation in a detached process.

The executor starts ``python -m nova_migrate_flows.mistral.detached`` in a
session of its own, hands it the operation as JSON on its standard input,
and is free again; Mistral waits for the result. The process runs the
operation, watches the action's executions in Mistral (a task timeout or
an execution cancel stops the operation the way SIGINT does, as SIGTERM
and SIGINT sent to it do), and reports the result with ``PUT
/v2/action_executions/{id}``. It does not depend on the executor: when the
executor dies, the operation goes on and Mistral still gets its result.
"""

import contextlib
import dataclasses
import json
import logging as std_logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from mistral_lib import actions
from oslo_log import log as logging

from nova_migrate_flows import exceptions, opts
from nova_migrate_flows.mistral import client as client_mod
from nova_migrate_flows.mistral import operation as operation_mod
from nova_migrate_flows.request import Operation

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the detached process runs (JSON on its standard input)."""

    operation: str
    given: dict[str, Any]
    config_file: list[str]
    config_dir: str | None
    execution: operation_mod.Execution

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        data = json.loads(text)
        data["execution"] = operation_mod.Execution(**data["execution"])
        return cls(**data)


def spawn(spec: Spec) -> int:
    """Start the detached process for ``spec``; its pid.

    It shares the executor's standard error (its log) and nothing else;
    a thread of the executor reaps it when it ends.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(spec.to_json().encode())
    threading.Thread(target=process.wait, daemon=True,
                     name=f"reap-{process.pid}").start()
    return process.pid


def report(client: client_mod.MistralClient, execution_id: str,
           result: actions.Result, timeout: float, interval: float,
           sleep: Callable[[float], None] = time.sleep) -> bool:
    """Complete the action execution with ``result``; retried while
    Mistral cannot be reached (for ``timeout`` seconds). False when Mistral
    refused it (the task or the execution had already ended) or could not
    be reached."""
    state, output = (("SUCCESS", result.data) if result.is_success()
                     else ("ERROR", result.error))
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.report(execution_id, state, output)
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout,
                ks_exc.HttpServerError) as exc:
            if time.monotonic() >= deadline:
                LOG.error("Mistral action execution %s: cannot report "
                          "the result: %s", execution_id, exc)
                return False
            LOG.warning("Mistral action execution %s: cannot report the "
                        "result yet: %s", execution_id, exc)
            sleep(interval)
        except ks_exc.ClientException as exc:
            LOG.warning("Mistral action execution %s: Mistral did not take "
                        "the result (%s ended already?): %s", execution_id,
                        state, exc)
            return False
        else:
            LOG.info("Mistral action execution %s: reported %s",
                     execution_id, state)
            return True


@contextlib.contextmanager
def signals_stop(watch: operation_mod.Watch) -> Iterator[None]:
    """SIGINT and SIGTERM stop the operation through ``watch`` while the
    block runs."""
    def interrupted(signum: int, frame: FrameType | None) -> None:
        watch.interrupt(f"interrupted by {signal.Signals(signum).name}")

    previous = {signum: signal.signal(signum, interrupted)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(stdin: Any = None) -> int:
    """The detached process: run the operation, report its result."""
    spec = Spec.from_json((stdin or sys.stdin).read())
    std_logging.basicConfig(
        level=std_logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s")
    execution = spec.execution
    assert execution.action_execution_id is not None
    try:
        conf = operation_mod.load_conf(spec.config_file, spec.config_dir)
        client = client_mod.from_conf(conf)
    except exceptions.NovaMigrateFlowsError as exc:
        LOG.error("Mistral action execution %s: %s",
                  execution.action_execution_id, exc)
        return 1
    group = conf[opts.MISTRAL_GROUP]
    watch = operation_mod.Watch(client, execution, group.poll_interval,
                                conf.drain.interrupt_action == "abort")
    with signals_stop(watch):
        result = operation_mod.execute(conf, Operation(spec.operation),
                                       spec.given, execution, watch)
    reported = report(client, execution.action_execution_id, result,
                      group.report_timeout, group.poll_interval)
    return 0 if reported else 1


if __name__ == "__main__":
    sys.exit(main())
