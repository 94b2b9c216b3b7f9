"""The emulator's Flask app and the HTTPS server thread that runs it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import batch, control, delta, entra, graph, pki

if TYPE_CHECKING:
    from .core import Emulator

# batch and delta register their routes on graph.bp when imported; keep the imports used.
_ROUTE_MODULES = (batch, delta)


class QuietHandler(WSGIRequestHandler):
    """Request handler without per-request logging and with TCP_NODELAY."""

    # Without it, keep-alive responses written in two parts wait for delayed ACKs (~40 ms).
    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip access logging: benchmarks and tests make thousands of requests."""


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
    """werkzeug's threaded HTTPS server on 127.0.0.1 in a daemon thread."""

    def __init__(self, emulator: Emulator, port: int) -> None:
        self.app = create_app(emulator)
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1",
            port,
            self.app,
            threaded=True,
            request_handler=QuietHandler,
            ssl_context=pki.server_ssl_context(emulator.state_dir),
        )
        self.port: int = self.server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"entra-emulator-{self.port}", daemon=True
        )

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
