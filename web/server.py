"""Serving the app with uvicorn: on a socket bound first (so a busy port is one clear error), in the foreground
(nst-web) or in a thread (tests, the benchmark). Asking the server to stop also ends the open event streams, which
would otherwise hold uvicorn's graceful shutdown open."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class WebServer(uvicorn.Server):
    def __init__(self, app: Any, **config: Any):
        super().__init__(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, **config))
        self.closing: threading.Event = app.state.closing

    def handle_exit(self, sig: int, frame: Any) -> None:  # Ctrl-C, SIGTERM
        self.closing.set()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        self.closing.set()
        self.should_exit = True


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); OSError if it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[WebServer, threading.Thread, str]:
    """Start the app on a free port in a thread; (server, thread, url) once it accepts requests. server.stop() and
    thread.join() end it."""
    sock = listen(host, port)
    server = WebServer(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="nst-web-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return server, thread, url_of(sock)
