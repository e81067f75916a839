"""Run an ASGI app on a loopback port in a background thread, for fakes that must speak real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

LOOPBACK = "127.0.0.1"
_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 10.0


class BackgroundServer:
    """One uvicorn server in one thread; it can be stopped and started again on the same port.

    Stopping closes the listening socket, so clients get "connection refused" until the next `start()`:
    that is how fakes simulate an outage of the remote service.
    """

    def __init__(self, app: ASGIApp, *, port: int = 0, graceful_shutdown_seconds: int = 1) -> None:
        self._app = app
        self._port = port
        self._graceful_shutdown_seconds = graceful_shutdown_seconds
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("the server has not been started yet")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            sock = self._bind()
            config = uvicorn.Config(
                self._app,
                loop="asyncio",
                http="h11",
                ws="none",
                lifespan="off",
                # Log records go to the root logger, where pytest captures them, instead of to stderr.
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=self._graceful_shutdown_seconds,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{self._port}", daemon=True
            )
            thread.start()
            try:
                self._wait_until_serving(server, thread)
            except BaseException:
                server.should_exit = True
                thread.join(_STOP_TIMEOUT_SECONDS)
                sock.close()
                raise
            self._server, self._thread = server, thread

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            server.should_exit = True
            thread.join(_STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT_SECONDS)
            self._server, self._thread = None, None

    def _bind(self) -> socket.socket:
        # IPPROTO_TCP (not 0) lets asyncio set TCP_NODELAY on accepted connections; without it every
        # response waits ~40 ms for Nagle and delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            # A restart reuses the port while the previous connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, self._port))
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock

    def _wait_until_serving(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not thread.is_alive():
                raise RuntimeError("the ASGI server thread exited during start-up")
            if server.started and _accepts_connections(self._port):
                return
            time.sleep(0.01)
        raise TimeoutError(f"the ASGI server did not accept connections within {_START_TIMEOUT_SECONDS}s")

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def run_in_thread(app: ASGIApp, *, port: int = 0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port unless one is given) and yield its base URL."""
    with BackgroundServer(app, port=port) as server:
        yield server.base_url
