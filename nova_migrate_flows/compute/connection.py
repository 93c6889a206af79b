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
"""Connecting to Nova from configuration: a clouds.yaml entry, or
keystoneauth options in ``[nova]`` the way OpenStack services do it."""

import os
from typing import Any

import openstack
import openstack.config
import openstack.connection
import openstack.exceptions
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg

import nova_migrate_flows
from nova_migrate_flows import constants, exceptions, opts
from nova_migrate_flows.compute import nova

APP_NAME = "nova-migrate-flows"


def connect(conf: cfg.ConfigOpts) -> openstack.connection.Connection:
    """An openstacksdk connection made from ``conf``'s ``[nova]`` group.

    Raises ConfigurationError when the configuration cannot give one.
    """
    group = conf[opts.NOVA_GROUP]
    if group.cloud:
        return _connect_cloud(group.cloud, group.clouds_yaml, group.timeout,
                              conf[opts.PLACEMENT_GROUP].endpoint_override)
    return _connect_options(conf)


def _connect_options(conf: cfg.ConfigOpts) -> openstack.connection.Connection:
    try:
        auth = ks_loading.load_auth_from_conf_options(conf, opts.NOVA_GROUP)
    except ks_exc.MissingRequiredOptions as exc:
        raise exceptions.ConfigurationError(
            f"[nova]: {exc}; set them, or set [nova] cloud to a clouds.yaml "
            "entry"
        ) from None
    except ks_exc.NoMatchingPlugin as exc:
        raise exceptions.ConfigurationError(
            f"[nova] auth_type: {exc}"
        ) from None
    if auth is None:
        raise exceptions.ConfigurationError(
            "[nova]: no way to reach Nova is configured; set [nova] cloud "
            "to a clouds.yaml entry, or [nova] auth_type and its options"
        )
    session = ks_loading.load_session_from_conf_options(
        conf, opts.NOVA_GROUP, auth=auth
    )
    return openstack.connection.Connection(
        session=session,
        oslo_conf=conf,
        app_name=APP_NAME,
        app_version=nova_migrate_flows.__version__,
    )


def _connect_cloud(
    cloud: str, clouds_yaml: str | None, timeout: float | None,
    placement_endpoint: str | None,
) -> openstack.connection.Connection:
    if clouds_yaml and not os.path.isfile(clouds_yaml):
        raise exceptions.ConfigurationError(
            f"[nova] clouds_yaml: {clouds_yaml}: no such file"
        )
    try:
        loader = openstack.config.OpenStackConfig(
            app_name=APP_NAME,
            app_version=nova_migrate_flows.__version__,
            **_config_files(clouds_yaml),
        )
        region = loader.get_one(cloud=cloud)
    except openstack.exceptions.ConfigException as exc:
        raise exceptions.ConfigurationError(
            f"[nova] cloud = {cloud}: {exc}"
        ) from None
    except ks_exc.MissingRequiredOptions as exc:
        raise exceptions.ConfigurationError(
            f"[nova] cloud = {cloud}: {exc}"
        ) from None
    if region.config.get("api_timeout") is None:
        # clouds.yaml's own api_timeout wins; [nova] timeout otherwise.
        region.config["api_timeout"] = timeout
    if placement_endpoint:
        # [placement] endpoint_override applies to a clouds.yaml entry too.
        region.config["placement_endpoint_override"] = placement_endpoint
    return openstack.connection.Connection(config=region)


def _config_files(clouds_yaml: str | None) -> dict[str, Any]:
    """Where openstacksdk may read clouds from.

    An explicit ``[nova] clouds_yaml`` is the only place: openstacksdk would
    otherwise put ``OS_CLIENT_CONFIG_FILE`` and ``OS_CLIENT_SECURE_FILE``
    first and read only the first file it finds, so a cloud of the same name
    in the operator's shell environment would be the one acted on. The
    environment is not read at all then (no ``OS_CLOUD``, no ``OS_*``
    cloud); secrets may sit in a ``secure.yaml`` beside the file. Unset: the
    usual openstacksdk search, environment included.
    """
    if not clouds_yaml:
        return {}
    secure = os.path.join(os.path.dirname(os.path.abspath(clouds_yaml)),
                          "secure.yaml")
    return {"config_files": [clouds_yaml], "secure_files": [secure],
            "load_envvars": False}


def describe_target(conf: cfg.ConfigOpts) -> dict[str, Any]:
    """Which cloud ``conf`` points at, as the log and a run's record name
    it: the clouds.yaml entry and its file, or the keystoneauth options'
    auth URL. Nothing secret."""
    group = conf[opts.NOVA_GROUP]
    if group.cloud:
        return {"cloud": group.cloud,
                "clouds_yaml": group.clouds_yaml or "openstacksdk's search"}
    return {"cloud": None, "auth_url": getattr(group, "auth_url", None)}


def pool_size(conf: cfg.ConfigOpts) -> int:
    """HTTP connections to keep per endpoint: one for each thread of a run
    that may send a request at once."""
    return (constants.TASK_THREADS_FACTOR * conf.engine.executor_workers
            + constants.OTHER_REQUEST_THREADS)


def size_pool(connection: openstack.connection.Connection,
              size: int) -> None:
    """Keep up to ``size`` HTTP connections per endpoint.

    keystoneauth's adapters keep requests' default of 10: with more threads
    than that sending requests, every answer beyond the tenth closes its
    connection (urllib3 logs "Connection pool is full, discarding
    connection") and the next request opens another. Each of keystoneauth's
    adapters is replaced by the same adapter (TCP keep-alive, TLS settings)
    with a pool of ``size``; an adapter of anyone else is left alone.
    """
    requests_session = connection.session.session
    for scheme, adapter in list(requests_session.adapters.items()):
        if isinstance(adapter, ks_session.TCPKeepAliveAdapter):
            requests_session.mount(scheme, ks_session.TCPKeepAliveAdapter(
                pool_maxsize=size,
                tls_ciphers=adapter.tls_ciphers,
                tls_min_version=adapter.tls_min_version,
            ))


def compute_from_conf(conf: cfg.ConfigOpts) -> nova.NovaCompute:
    """The compute interface over a connection made from ``conf``, with an
    HTTP connection pool as large as the run's concurrency."""
    group = conf[opts.NOVA_GROUP]
    connection = connect(conf)
    size_pool(connection, pool_size(conf))
    return nova.NovaCompute(
        connection,
        target=describe_target(conf),
        read_retries=group.read_retries,
        retry_backoff=group.retry_backoff,
        retry_backoff_max=group.retry_backoff_max,
    )
