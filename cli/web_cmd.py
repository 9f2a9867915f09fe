"""nst-web: a local web page to stylize in the browser with a live preview (the page and its server: nst.web).

Loads the model once, binds the port, prints the URL and serves until Ctrl-C; results live in a temporary folder
that is removed when the server stops."""

from __future__ import annotations

import contextlib
import signal
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..engine.images import DEFAULT_MAX_PIXELS
from ..engine.manifest import DEFAULT_MODEL_DIR
from .common import INTERRUPTED, MaxPixels, ModelDir, fail, guard, one_line_command, say

PROG = "nst-web"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# 20 MB per image: a 12 MP camera JPEG is about 4-6 MB and a 48 MP one 12-24 MB (0.25-0.5 bytes/px, the rate of
# ../shared's photos); a 12 MP PNG of a photo (1.2-2.8 bytes/px) may need a larger limit (README, "nst-web").
DEFAULT_MAX_UPLOAD_MB = 20.0
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


@app.command(
    help="Serve a local web page to stylize images in the browser with a live preview; prints its URL.",
    epilog="Exit codes: 130 after Ctrl-C (the server stopped cleanly), 1 failed to start (one 'nst-web: error:' "
    "line), 2 bad command line.",
    cls=one_line_command(PROG),
)
@guard(PROG, "interrupted while starting; nothing was served")
def web(
    model: ModelDir = DEFAULT_MODEL_DIR,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 serves other machines too (no authentication!).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 7860,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.01, help="Refuse uploaded images larger than this many MB (each).")
    ] = DEFAULT_MAX_UPLOAD_MB,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    try:
        from ..web.app import create_app
        from ..web.server import WebServer, listen, url_of
    except ImportError as e:
        raise fail(PROG, f"nst-web needs the web extra ({e.name} is missing): pip install 'nst[web]'") from None
    from ..engine import NSTError, load_model

    try:
        nst_model = load_model(model)
    except NSTError as e:
        raise fail(PROG, str(e)) from None
    try:
        sock = listen(host, port)
    except OSError as e:
        raise fail(PROG, f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port") from None
    if host not in LOCAL_HOSTS:
        say(
            PROG,
            f"warning: listening on {host}: there is no authentication; anyone who can reach this port can run "
            "jobs and download their results",
        )
    with sock, tempfile.TemporaryDirectory(prefix="nst-web-") as workdir:
        server = WebServer(create_app(nst_model, Path(workdir), max_upload_mb=max_upload_mb, max_pixels=max_pixels))
        typer.echo(f"nst-web: serving {url_of(sock)} ({nst_model.manifest.id} on {nst_model.provider}); Ctrl-C stops")
        signal.signal(signal.SIGTERM, _as_interrupt)  # so that the folder is removed on a plain kill too
        # uvicorn re-raises the Ctrl-C (or SIGTERM) it caught, once it has shut down
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    say(PROG, "stopped; the results' temporary folder was removed")
    raise typer.Exit(INTERRUPTED)


def _as_interrupt(sig: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    app(prog_name=PROG)
