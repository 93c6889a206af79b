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
"""A threaded WSGI server on the loopback interface.

The standard library's ``wsgiref`` with one thread per request: Nova runs
in native-threading mode in the sandbox, so plain threads serve it.
"""

import logging
import socketserver
from collections.abc import Callable
from typing import Any
from wsgiref import simple_server

LOG = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class _QuietHandler(simple_server.WSGIRequestHandler):
    """Log requests at debug level: the services log them already."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        LOG.debug("%s %s", self.address_string(), format % args)


def make_server(app: Callable[..., Any],
                port: int = 0) -> simple_server.WSGIServer:
    """Bind ``app`` to ``127.0.0.1:port`` (0: any free port).

    Serve with ``serve_forever()``; the bound port is ``server_port``.
    """
    server = simple_server.make_server(
        LOOPBACK, port, app, server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler)
    LOG.info("Listening on http://%s:%d", LOOPBACK, server.server_port)
    return server
