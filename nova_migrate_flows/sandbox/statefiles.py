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
"""The files of a sandbox's state directory, and how they are written.

``DIR/sandbox.json``
    Written by the server once it listens (mode 0600): pid, port,
    endpoints, hosts, users with their passwords, the application
    credential, the control secret and the start options.
``DIR/clouds.yaml``
    Written by :func:`nova_migrate_flows.sandbox.control.start` (0600):
    clouds ``sandbox`` (admin), ``sandbox-demo`` (member) and
    ``sandbox-appcred`` (admin's application credential).
``DIR/nova-migrate-flows.conf``
    The project's configuration, pointing at ``clouds.yaml``.
``DIR/sandbox.log``
    Everything the server prints.
``DIR/nova/``
    The server's databases, locks and temporary files.
``DIR/state/``
    The ``state_dir`` of nova-migrate-flows in the configuration.
``DIR/python-path/``
    When the server runs with another interpreter: a link to the
    package, on that server's ``PYTHONPATH``.

Only the standard library and PyYAML are used.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

import yaml

from nova_migrate_flows.sandbox import constants


@dataclasses.dataclass(frozen=True)
class StateDir:
    """The paths of one sandbox's state directory (absolute)."""

    path: str

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> "StateDir":
        """The state directory at ``path``, made absolute."""
        return cls(os.path.abspath(os.fspath(path)))

    @property
    def runtime_file(self) -> str:
        """``sandbox.json``: what the running server wrote about itself."""
        return os.path.join(self.path, "sandbox.json")

    @property
    def clouds_yaml(self) -> str:
        """``clouds.yaml`` for openstacksdk."""
        return os.path.join(self.path, "clouds.yaml")

    @property
    def config_file(self) -> str:
        """``nova-migrate-flows.conf`` for the project's command line."""
        return os.path.join(self.path, "nova-migrate-flows.conf")

    @property
    def log_file(self) -> str:
        """``sandbox.log``: the server's output."""
        return os.path.join(self.path, "sandbox.log")

    @property
    def work_dir(self) -> str:
        """``nova/``: the server's databases, locks and temporary files."""
        return os.path.join(self.path, "nova")

    @property
    def python_path(self) -> str:
        """``python-path/``: what another interpreter imports the package
        from."""
        return os.path.join(self.path, "python-path")

    @property
    def tool_state_dir(self) -> str:
        """``state/``: the ``state_dir`` the configuration names."""
        return os.path.join(self.path, "state")


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_runtime(state: StateDir, document: dict[str, Any]) -> None:
    """Write ``sandbox.json``."""
    write_private(state.runtime_file, json.dumps(document, indent=2) + "\n")


def read_runtime(state: StateDir) -> dict[str, Any] | None:
    """The content of ``sandbox.json``, or None when there is none."""
    try:
        with open(state.runtime_file, encoding="utf-8") as stream:
            document: dict[str, Any] = json.load(stream)
    except FileNotFoundError:
        return None
    return document


def clouds(runtime: dict[str, Any]) -> dict[str, Any]:
    """The ``clouds.yaml`` document for a running sandbox."""
    auth_url = runtime["endpoints"]["identity"]
    common = {
        "region_name": constants.REGION,
        "interface": "public",
        "identity_api_version": 3,
    }

    def password_cloud(user: dict[str, Any]) -> dict[str, Any]:
        return dict(common, auth_type="password", auth={
            "auth_url": auth_url,
            "username": user["name"],
            "password": user["password"],
            "project_name": user["project_name"],
            "user_domain_name": constants.DOMAIN_NAME,
            "project_domain_name": constants.DOMAIN_NAME,
        })

    users = runtime["users"]
    credential = runtime["application_credential"]
    return {"clouds": {
        constants.CLOUD_ADMIN: password_cloud(users[constants.ADMIN_USER]),
        constants.CLOUD_DEMO: password_cloud(users[constants.DEMO_USER]),
        constants.CLOUD_APPCRED: dict(
            common, auth_type="v3applicationcredential", auth={
                "auth_url": auth_url,
                "application_credential_id": credential["id"],
                "application_credential_secret": credential["secret"],
            }),
    }}


def write_clouds_yaml(state: StateDir, runtime: dict[str, Any]) -> None:
    """Write ``clouds.yaml`` (mode 0600: it holds passwords)."""
    write_private(state.clouds_yaml,
                  yaml.safe_dump(clouds(runtime), sort_keys=False))


def config_text(state: StateDir) -> str:
    """The project's configuration for this sandbox."""
    return (
        "[DEFAULT]\n"
        f"state_dir = {state.tool_state_dir}\n"
        "\n"
        "[nova]\n"
        f"cloud = {constants.CLOUD_ADMIN}\n"
        f"clouds_yaml = {state.clouds_yaml}\n"
    )


def write_config(state: StateDir) -> None:
    """Write ``nova-migrate-flows.conf`` and create its ``state_dir``."""
    os.makedirs(state.tool_state_dir, exist_ok=True)
    write_private(state.config_file, config_text(state))


def remove_runtime(state: StateDir) -> None:
    """Remove what describes a running sandbox, and its work directory.

    The log, the configuration and the tool's ``state/`` stay.
    """
    for path in (state.runtime_file, state.clouds_yaml):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    shutil.rmtree(state.work_dir, ignore_errors=True)
