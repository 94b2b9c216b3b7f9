"""The emulator's Flask app and the HTTPS server thread that runs it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import batch, control, delta, entra, graph, pki

if TYPE_CHECKING:
    from .core import Emulator

# batch and delta register their routes on graph.bp when imported; keep the imports used.
_ROUTE_MODULES = (batch, delta)


def _counter_name(endpoint: str | None) -> str:
    if endpoint is None:
        return "unmatched"
    return endpoint.removeprefix("entra.")


def create_app(emulator: Emulator) -> Flask:
    """Build the emulator's Flask app (not the portal's)."""
    app = Flask(__name__)
    app.extensions["emulator"] = emulator
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.redirect_defaults = False
    app.register_blueprint(entra.bp)
    app.register_blueprint(graph.bp)
    app.register_blueprint(control.bp)

    @app.before_request
    def count_and_delay() -> None:
        """Count every request under its endpoint name, then apply the configured latency."""
        name = _counter_name(request.endpoint)
        emulator.count(name)
        if not request.environ.get("emulator.inner"):
            emulator.sleep(emulator.next_delay(name))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """Answer routing errors under /v1.0 in Graph's error shape."""
        if not request.path.startswith("/v1.0/"):
            return exc
        status = 405 if exc.code == 405 else 400
        return _graph_route_error(status, exc)

    return app


def _graph_route_error(status: int, exc: HTTPException) -> Response:
    message = f"Resource not found for the segment '{request.path.rsplit('/', 1)[-1]}'."
    if status == 405:
        message = f"The method {request.method} is not allowed here."
    return graph.graph_error(status, "BadRequest", message if exc.code in (404, 405) else str(exc))


class ServerThread:
    """cheroot's threaded HTTPS server on 127.0.0.1 in a daemon thread.

    cheroot keeps HTTP/1.1 connections alive, as Entra ID and Graph do, so a client that pools
    its connections (the portal does) pays one TLS handshake per connection, not per request.
    """

    THREADS = 64  # cheroot's pool is fixed: room for the load tests' concurrent sign-ins

    def __init__(self, emulator: Emulator, port: int) -> None:
        self.app = create_app(emulator)
        self.server = wsgi.Server(
            ("127.0.0.1", port), self.app, numthreads=self.THREADS, server_name="entra-emulator"
        )
        adapter = BuiltinSSLAdapter(
            str(emulator.state_dir / pki.SERVER_CERT_FILE),
            str(emulator.state_dir / pki.SERVER_KEY_FILE),
        )
        adapter.context = pki.server_ssl_context(emulator.state_dir)  # TLS 1.2 at least
        self.server.ssl_adapter = adapter
        # Room for every client's idle keep-alive connection (cheroot's default closes past 10).
        self.server.keep_alive_conn_limit = self.THREADS * 4
        self.server.prepare()  # binds now, so the port is known before start()
        self.port: int = self.server.bind_addr[1]
        self._thread = threading.Thread(
            target=self.server.serve, name=f"entra-emulator-{self.port}", daemon=True
        )

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.stop()
        self._thread.join(timeout=5)
