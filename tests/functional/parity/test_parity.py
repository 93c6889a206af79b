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
"""The in-memory fake shows a client what real Nova shows.

Every scenario runs on the sandbox's Nova and on the fake, through the
tool's compute interface. The answers (HTTP codes of refusals), the
servers at the end, their migration records and instance actions must be
the same; every status the fake went through must be a step Nova takes,
and every status a poll of Nova caught must follow from the one before.
"""

from typing import Any

import pytest

from tests.functional.parity import clouds, nova_paths, scenarios


def wrong_paths(run: clouds.Run) -> dict[str, list[tuple[str, str]]]:
    """The steps of ``run`` that are no path of Nova's, by what took
    them."""
    every_step = run.cloud.sees_every_step
    wrong = {}
    for label, path in run.server_paths.items():
        steps = nova_paths.wrong_steps(nova_paths.SERVER, path, every_step)
        if steps:
            wrong[f"server {label}"] = steps
    for migration_id, (kind, statuses) in run.migration_paths.items():
        first, graph = nova_paths.MIGRATIONS[kind]
        steps = nova_paths.wrong_steps(graph, [first, *statuses], every_step)
        if steps:
            wrong[f"{kind} {migration_id}"] = steps
    return wrong


@pytest.fixture
def on_nova(sandbox_client: Any, boot_servers: Any, sdk: Any,
            restore_cloud: None) -> clouds.Run:
    return clouds.Run(clouds.SandboxCloud(sandbox_client, boot_servers, sdk))


@pytest.mark.parametrize(
    "scenario", [pytest.param(s, id=s.__name__) for s in scenarios.ALL])
def test_the_fake_shows_what_nova_shows(scenario: scenarios.Scenario,
                                        on_nova: clouds.Run) -> None:
    on_fake = clouds.Run(clouds.FakeCloud())

    scenario(on_nova)
    scenario(on_fake)

    assert on_fake.seen() == on_nova.seen()
    assert wrong_paths(on_fake) == {}
    assert wrong_paths(on_nova) == {}


@pytest.mark.parametrize(("path", "every_step", "wrong"), [
    (["accepted", "preparing", "running", "completed"], True, []),
    (["accepted", "running", "completed"], True, [("accepted", "running")]),
    (["accepted", "running", "completed"], False, []),
    (["accepted", "completed", "running"], False,
     [("completed", "running")]),
    (["accepted", "running", "error"], False, [("running", "error")]),
], ids=["every-step", "a-skip-in-the-fake", "a-skip-in-a-poll", "backwards",
        "never-taken"])
def test_a_path_is_checked_against_nova_s(path, every_step, wrong):
    graph = nova_paths.MIGRATIONS["live-migration"][1]

    assert nova_paths.wrong_steps(graph, path, every_step) == wrong
