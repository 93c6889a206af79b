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
"""The tasks on a whole host: who disabled the service, and undoing it."""

from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import fake
from nova_migrate_flows.execution import runtime as runtime_mod
from nova_migrate_flows.tasks import markers, service


def make(conf, cloud, resuming=False):
    request = request_mod.build_request(
        conf.conf, request_mod.Operation.HOST_EVACUATE_LIVE,
        hosts=["host1"])
    return runtime_mod.Runtime(conf.conf, cloud, request,
                               resuming=resuming), request.to_dict()


def test_an_enabled_service_is_disabled_and_then_enabled_on_revert(conf):
    cloud = fake.FakeCompute(2)
    runtime, request = make(conf, cloud)
    task = service.DisableService("host1")

    result = task.execute(runtime, "host1", request, run_id="r1")

    assert result["disabled_by_us"] is True
    assert cloud.services["host1"].status == "disabled"
    assert "(run r1)" in cloud.services["host1"].disabled_reason
    task.revert(runtime, "host1", result)
    assert cloud.services["host1"].status == "enabled"


def test_a_service_disabled_by_someone_else_is_left_alone(conf):
    cloud = fake.FakeCompute(2)
    cloud.set_service("host1", status="disabled", disabled_reason="RMA 12")
    runtime, request = make(conf, cloud)
    task = service.DisableService("host1")

    result = task.execute(runtime, "host1", request, run_id="r1")
    task.revert(runtime, "host1", result)

    assert result == {"service_id": cloud.services["host1"].id,
                      "disabled_by_us": False, "previous_reason": "RMA 12",
                      "reason": None}
    assert cloud.services["host1"].status == "disabled"
    assert cloud.writes == []


def test_a_resumed_run_recognises_the_service_it_disabled(conf):
    cloud = fake.FakeCompute(2)
    cloud.set_service("host1", status="disabled", disabled_reason=(
        markers.reason("host-evacuate-live started", "r1")))
    runtime, request = make(conf, cloud, resuming=True)

    result = service.DisableService("host1").execute(
        runtime, "host1", request, run_id="r1")
    other = service.DisableService("host1").execute(
        runtime, "host1", request, run_id="r2")

    assert result["disabled_by_us"] is True
    assert other["disabled_by_us"] is False


def test_the_cloud_is_named_before_the_service_is_disabled(conf, caplog):
    cloud = fake.FakeCompute(2)
    runtime, request = make(conf, cloud)
    caplog.set_level("INFO")

    service.DisableService("host1").execute(runtime, "host1", request,
                                            run_id="r1")

    lines = [r.getMessage() for r in caplog.records]
    acting = next(i for i, line in enumerate(lines)
                  if line.startswith("Acting on"))
    disabling = next(i for i, line in enumerate(lines)
                     if line.startswith("Disabling the compute service"))
    assert acting < disabling
