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
"""Nova's reason for a failed move, from its instance-action events."""

import types

from nova_migrate_flows.compute import models
from nova_migrate_flows.tasks import moves


def action(*events: dict) -> models.InstanceAction:
    return models.InstanceAction(action="evacuate", request_id="req-1",
                                 start_time="2026-11-27T16:00:00",
                                 message=None, events=events)


RUNNING = {"event": "compute_rebuild_instance", "result": None,
           "start_time": "2026-11-27T16:00:00", "finish_time": None,
           "host": "host2"}
FAILED = dict(RUNNING, result="Error", finish_time="2026-11-27T16:00:02",
              details="Evacuation told to fail it")


class Actions:
    """Answers the reads of one instance action, one answer per read."""

    def __init__(self, *answers: models.InstanceAction):
        self.answers = list(answers)
        self.reads = 0

    def instance_action(self, server_id, request_id):
        self.reads += 1
        return self.answers[min(self.reads, len(self.answers)) - 1]


def test_the_reason_waits_for_the_event_nova_has_not_finished(
        monkeypatch):
    monkeypatch.setattr(moves, "EVENT_POLL", 0.01)
    compute = Actions(action(RUNNING), action(RUNNING), action(FAILED))

    reason = moves.diagnose(types.SimpleNamespace(compute=compute), "srv",
                            "req-1")

    # Nova marked the migration failed before it finished the event.
    assert reason == ("compute_rebuild_instance on host2: Evacuation told "
                      "to fail it")
    assert compute.reads == 3


def test_an_event_that_never_finishes_is_waited_for_a_bounded_time(
        monkeypatch):
    monkeypatch.setattr(moves, "EVENT_POLL", 0.01)
    monkeypatch.setattr(moves, "EVENT_WAIT", 0.05)
    compute = Actions(action(RUNNING))

    assert moves.diagnose(types.SimpleNamespace(compute=compute), "srv",
                          "req-1") is None
    assert compute.reads > 1


def test_finished_events_are_read_once():
    compute = Actions(action(FAILED))

    assert "told to fail it" in moves.diagnose(
        types.SimpleNamespace(compute=compute), "srv", "req-1")
    assert compute.reads == 1
