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
"""Loading task plugins: configured order, and fatal errors for bad names."""

import inspect

import pytest

from nova_migrate_flows import exceptions
from nova_migrate_flows.tasks import base, loader, preflight, retry


def test_plugins_load_in_the_configured_order():
    names = ["storage", "server-state", "capacity"]

    loaded = loader.load(names, base.PREFLIGHT, "[migration] x")

    assert [name for name, _ in loaded] == names
    assert loaded[1][1] is preflight.ServerStateCheck


def test_an_unknown_plugin_is_fatal_and_lists_the_installed_ones():
    with pytest.raises(exceptions.PluginError) as caught:
        loader.load(["server-state", "sever-state"], base.PREFLIGHT,
                    "[migration] preflight_tasks")

    message = str(caught.value)
    assert "[migration] preflight_tasks" in message
    assert "'sever-state'" in message
    assert "server-state" in caught.value.installed
    assert "storage" in message
    assert caught.value.name == "sever-state"
    assert caught.value.exit_code == exceptions.ExitCode.BAD_INPUT


def test_a_plugin_of_the_wrong_kind_is_fatal():
    with pytest.raises(exceptions.PluginError, match="verify task, not a "
                       "preflight"):
        loader.load(["host-changed"], base.PREFLIGHT, "opt")


def test_a_plugin_listed_twice_is_fatal():
    with pytest.raises(exceptions.PluginError, match="listed twice"):
        loader.load(["storage", "storage"], base.PREFLIGHT, "opt")


def test_a_plugin_that_fails_to_import_is_fatal(example_plugin):
    with pytest.raises(exceptions.PluginError) as caught:
        loader.load(["example-broken"], base.VERIFY, "[migration] "
                    "verify_tasks")

    assert "'example-broken' failed to load" in str(caught.value)
    assert "needs a library that is missing" in str(caught.value)


def test_a_third_party_plugin_loads(example_plugin):
    loaded = loader.load(["example-metadata-kept"], base.VERIFY, "opt")

    assert loaded[0][1].__name__ == "MetadataKept"
    assert loaded[0][1].description().startswith("The server kept its")


def test_installed_reports_broken_plugins_without_raising(example_plugin):
    found = loader.installed()

    assert isinstance(found["example-broken"], ImportError)
    assert found["server-state"] is preflight.ServerStateCheck


def test_every_registered_task_has_a_description_and_kind():
    for name, plugin in loader.installed().items():
        ours = getattr(plugin, "__module__", "").startswith(
            "nova_migrate_flows.")
        if isinstance(plugin, BaseException) or not ours:
            continue
        assert plugin.kind in (base.PREFLIGHT, base.VERIFY, base.CORE,
                               base.HOOK), name
        assert plugin.description(), name
        # Every task says what its revert undoes (STYLE: Cinder's rule).
        assert "Reversion strategy:" in (plugin.__doc__ or ""), name


def test_every_revert_takes_the_engine_s_extra_arguments():
    for name, plugin in loader.installed().items():
        if isinstance(plugin, BaseException) or "revert" not in vars(plugin):
            continue
        parameters = inspect.signature(plugin.revert).parameters.values()
        assert any(p.kind is p.VAR_KEYWORD for p in parameters), name


def test_every_task_remembers_the_signatures_taskflow_reads():
    # TaskFlow reads them for every atom it makes; remembered, inspect
    # answers them without parsing the function again.
    for name, plugin in loader.installed().items():
        if isinstance(plugin, BaseException) or not issubclass(
                plugin, base.BaseTask):
            continue
        for method in ("execute", "revert"):
            function = getattr(plugin, method)
            assert "__signature__" in vars(function), (name, method)


def test_a_remembered_signature_is_the_function_s_own():
    class Probe(base.BaseTask):
        def execute(self, server_id, runtime=None):
            return server_id

    probe = Probe(name="probe")

    assert list(inspect.signature(Probe.execute).parameters) == [
        "self", "server_id", "runtime"]
    assert set(probe.requires) == {"server_id"}
    assert set(probe.optional) == {"runtime"}
    assert "__signature__" in vars(retry.TargetHostRetry.execute)
