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
"""A WSGI server on the loopback interface, threaded or green.

:func:`make_server`: the standard library's ``wsgiref`` with one thread per
request, for a Nova that runs in native-threading mode.
:func:`make_green_server`: eventlet's WSGI server, one green thread per
connection, for an older Nova that runs only monkey-patched by eventlet
(eventlet is imported only then).
"""

import logging
import socketserver
from collections.abc import Callable
from typing import Any, Protocol
from wsgiref import simple_server

LOG = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class Server(Protocol):
    """What both kinds of server offer."""

    server_port: int

    def set_app(self, application: Callable[..., Any]) -> None:
        """Serve ``application`` from now on."""

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown`."""

    def shutdown(self) -> None:
        """Stop serving."""

    def server_close(self) -> None:
        """Close the listening socket."""


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


class GreenWSGIServer:
    """Eventlet's WSGI server, with the methods of ``make_server``'s.

    Serve with ``serve_forever()`` (from a green thread: in an eventlet
    process ``threading.Thread`` is one); ``shutdown()`` stops it from
    another one.
    """

    def __init__(self, app: Callable[..., Any], port: int = 0) -> None:
        import eventlet

        self._app = app
        self._socket = eventlet.listen((LOOPBACK, port), backlog=128)
        self.server_port: int = self._socket.getsockname()[1]
        self._serving: Any = None
        self._stopped = False

    def set_app(self, application: Callable[..., Any]) -> None:
        """Serve ``application`` from now on."""
        self._app = application

    def _call_app(self, environ: dict[str, Any],
                  start_response: Callable[..., Any]) -> Any:
        return self._app(environ, start_response)

    def serve_forever(self) -> None:
        """Accept and serve connections until :meth:`shutdown`."""
        import eventlet
        import eventlet.wsgi
        import greenlet

        if self._stopped:
            return
        self._serving = eventlet.spawn(
            eventlet.wsgi.server, self._socket, self._call_app, log=LOG,
            log_output=False)
        try:
            self._serving.wait()
        except greenlet.GreenletExit:
            LOG.debug("The WSGI server stopped")

    def shutdown(self) -> None:
        """Stop serving (connections being served finish on their own)."""
        self._stopped = True
        if self._serving is not None:
            self._serving.kill()

    def server_close(self) -> None:
        """Close the listening socket."""
        self._socket.close()


def make_green_server(app: Callable[..., Any],
                      port: int = 0) -> GreenWSGIServer:
    """Bind ``app`` to ``127.0.0.1:port`` with eventlet's WSGI server.

    Only for a process that eventlet has monkey-patched.
    """
    server = GreenWSGIServer(app, port)
    LOG.info("Listening on http://%s:%d (eventlet)", LOOPBACK,
             server.server_port)
    return server
