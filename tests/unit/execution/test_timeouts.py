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
"""The timeout policy, with plain numbers (the poller's tests take the
actions against a cloud)."""

from nova_migrate_flows import opts
from nova_migrate_flows.execution import timeouts
from nova_migrate_flows.execution.timeouts import Timeouts


def test_no_limit_is_never_exceeded():
    assert Timeouts().exceeded(0.0, 0.0, 1e9) is None
    assert Timeouts().deadlines(0.0, 0.0) == []


def test_the_completion_timeout_counts_from_the_start():
    limits = Timeouts(completion=10.0)

    assert limits.deadlines(5.0, None) == [15.0]
    assert limits.exceeded(5.0, None, 15.0) is None
    assert limits.exceeded(5.0, None, 15.5) == "completion timeout of 10 s"


def test_the_progress_timeout_counts_from_the_last_progress():
    limits = Timeouts(progress=3.0)

    assert limits.deadlines(0.0, 5.0) == [8.0]
    assert limits.exceeded(0.0, 5.0, 8.0) is None
    assert limits.exceeded(0.0, 5.0, 8.5) == "no progress for 3 s"


def test_no_progress_sampled_yet_is_no_stall():
    limits = Timeouts(progress=3.0)

    assert limits.deadlines(0.0, None) == []
    assert limits.exceeded(0.0, None, 100.0) is None


def test_the_completion_timeout_is_told_first():
    limits = Timeouts(completion=10.0, progress=3.0)

    assert limits.deadlines(0.0, 5.0) == [10.0, 8.0]
    assert limits.exceeded(0.0, 5.0, 9.0) == "no progress for 3 s"
    assert limits.exceeded(0.0, 5.0, 11.0) == "completion timeout of 10 s"


def test_a_migration_is_aborted_unless_told_otherwise():
    assert Timeouts().action == timeouts.ABORT


def test_every_action_the_options_allow_is_known():
    (option,) = [o for o in opts.migration_opts if o.name == "timeout_action"]

    assert set(timeouts.DOING) == set(option.type.choices) == {
        timeouts.ABORT, timeouts.FORCE_COMPLETE, timeouts.FAIL}
