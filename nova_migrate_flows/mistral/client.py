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
"""Mistral's v2 API, the little the actions need of it: the state of an
action execution, of its task and of its workflow execution, and reporting
an asynchronous action's result (``PUT /v2/action_executions/{id}``)."""

from typing import Any

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from nova_migrate_flows import exceptions, opts

#: The states in which Mistral no longer waits for a result.
FINISHED_STATES = frozenset({"SUCCESS", "ERROR", "CANCELLED"})


class MistralClient:
    """Calls to Mistral's API through a keystoneauth adapter."""

    def __init__(self, adapter: ks_adapter.Adapter) -> None:
        self._adapter = adapter

    def action_execution(self, execution_id: str) -> dict[str, Any]:
        return self._get(f"/action_executions/{execution_id}")

    def task_execution(self, execution_id: str) -> dict[str, Any]:
        return self._get(f"/tasks/{execution_id}")

    def workflow_execution(self, execution_id: str) -> dict[str, Any]:
        return self._get(f"/executions/{execution_id}")

    def report(self, execution_id: str, state: str, output: Any) -> None:
        """Complete the action execution with ``state`` (``SUCCESS`` or
        ``ERROR``) and ``output`` (the task's result)."""
        self._adapter.put(f"/action_executions/{execution_id}",
                          json={"state": state, "output": output})

    def _get(self, path: str) -> dict[str, Any]:
        body: dict[str, Any] = self._adapter.get(path).json()
        return body


def configured(conf: cfg.ConfigOpts) -> bool:
    """Whether ``[mistral]`` says how to reach Mistral's API."""
    group = conf[opts.MISTRAL_GROUP]
    return bool(group.endpoint_override or group.auth_type)


def from_conf(conf: cfg.ConfigOpts) -> MistralClient:
    """A client from ``conf``'s ``[mistral]`` group: ``endpoint_override``
    alone when Mistral's authentication is disabled, keystoneauth options
    (and the catalog's ``workflowv2`` endpoint) otherwise.

    :raises nova_migrate_flows.exceptions.ConfigurationError: nothing or
        not enough is configured.
    """
    group = opts.MISTRAL_GROUP
    if not configured(conf):
        raise exceptions.ConfigurationError(
            f"[{group}]: Mistral's API is not configured; set [{group}] "
            f"endpoint_override (authentication disabled), or [{group}] "
            "auth_type and its options"
        )
    try:
        auth = ks_loading.load_auth_from_conf_options(conf, group)
    except (ks_exc.MissingRequiredOptions, ks_exc.NoMatchingPlugin) as exc:
        raise exceptions.ConfigurationError(f"[{group}]: {exc}") from None
    session = ks_loading.load_session_from_conf_options(conf, group,
                                                        auth=auth)
    adapter = ks_loading.load_adapter_from_conf_options(
        conf, group, session=session, auth=auth, raise_exc=True)
    return MistralClient(adapter)
