"""nst-web's Starlette app: the page, its script, the options it offers, job submission (uploads decoded by the
engine's loader), Stop, downloads and one server-sent event stream per browser tab.

The client names runs by id and never a server path. Results live under `workdir` (the command's temporary
folder, removed at exit). One job runs at a time (web/jobs.py); a tab's stream closing for good cancels its jobs
(web/hub.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.resources
import json
import re
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..engine.errors import NSTError
from ..engine.files import json_safe
from ..engine.options import NO_MASK, OptionError
from . import examples
from .form import page_options, parse_options
from .hub import SessionHub
from .jobs import FINISHED, Job, JobQueue
from .runner import PREVIEW_EVERY, StylizeRunner, Work, plan_error

MAX_STYLES = 4
MASK_FIELDS = ("mask", "source_mask")  # per style i, form fields mask{i} and source_mask{i}: optional uploads
MAX_FILES = 1 + MAX_STYLES * (1 + len(MASK_FIELDS))
SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
STATIC = importlib.resources.files("nst.web") / "static"


def _error(message: str, status: int = 400, **details: Any) -> JSONResponse:
    return JSONResponse(json_safe({"error": " ".join(str(message).split()), **details}), status_code=status)


def _upload_name(upload: UploadFile) -> str:
    """The file's own name, as the user knows it; no directories, no control characters."""
    name = "".join(c for c in Path(upload.filename or "").name if c.isprintable())[:100]
    return name or "image"


def _limited(receive: Any, limit: int) -> Any:
    """The ASGI receive, refusing a request body larger than `limit` bytes as it arrives."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise HTTPException(413, f"the upload is larger than {limit / 1e6:.0f} MB in all")
        return message

    return wrapped


def decode(files: list[tuple[str, bytes]], folder: Path, max_pixels: int | None, loader: Any = None) -> list[Any]:
    """Decode uploads with the engine's loader (load_image, or load_mask for masks; the decompression-bomb guard,
    corrupt and non-image files): each is written to a scratch folder for a moment, and errors name the upload, not
    the scratch path."""
    from ..engine import ImageError, load_image

    loader = loader or load_image

    scratch = Path(tempfile.mkdtemp(prefix="upload-", dir=folder))
    try:
        arrays = []
        for i, (name, data) in enumerate(files):
            path = scratch / str(i) / name
            path.parent.mkdir()
            path.write_bytes(data)
            try:
                arrays.append(loader(path, max_pixels))
            except ImageError as e:
                raise ImageError(str(e).replace(str(path), name)) from None
        return arrays
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def summary(queue: JobQueue, job: Job) -> dict:
    """A job as the page's runs list shows it."""
    work: Work = job.work
    return {
        "job": job.id,
        "state": job.state,
        "position": queue.position(job),
        "content": work.content_name,
        "styles": work.style_names,
        "size": work.options.size,
        "error": job.error,
        **job.details,
        "result": job.output.summary if job.output is not None else None,
    }


def create_app(
    model: Any,
    workdir: Path,
    *,
    max_upload_mb: float = 20.0,
    max_pixels: int | None = None,
    preview_every: int = PREVIEW_EVERY,
    grace: float = 3.0,
) -> Starlette:
    """The app for one loaded model; results under workdir. app.state.closing ends the event streams (set it when
    the server is asked to stop: an open stream would otherwise hold the shutdown)."""
    limit = int(max_upload_mb * 1e6)
    closing = threading.Event()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        workdir.mkdir(parents=True, exist_ok=True)
        runner = StylizeRunner(model, workdir / "results", preview_every)
        queue = JobQueue(runner)
        hub = SessionHub(asyncio.get_running_loop(), queue.cancel_session, grace)
        queue.add_listener(hub.publish)
        queue.add_listener(_release_when_finished)
        state.update(queue=queue, hub=hub)
        try:
            yield
        finally:
            closing.set()
            await run_in_threadpool(queue.close)

    def job_of(request: Request) -> Job:
        job = state["queue"].get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, "no such run on this server (runs last until the server stops)")
        return job

    async def page(request: Request) -> Response:
        return Response((STATIC / "index.html").read_text(), media_type="text/html")

    async def script(request: Request) -> Response:
        return Response((STATIC / "app.js").read_text(), media_type="text/javascript")

    async def config(request: Request) -> Response:
        return JSONResponse(
            {
                "options": page_options(model.manifest.style_weight),
                "max_upload_mb": max_upload_mb,
                "max_styles": MAX_STYLES,
                "model": model.manifest.id,
                "provider": model.provider,
                "preview_every": preview_every,
            }
        )

    async def example(request: Request) -> Response:
        make = {"content": examples.demo_content, "style": examples.demo_style}.get(request.path_params["name"])
        if make is None:
            raise HTTPException(404, "the examples are content and style")
        try:
            pixels = await run_in_threadpool(make)
        except examples.ExamplesUnavailable as e:
            return _error(str(e), 404)
        return Response(examples.png_bytes(pixels), media_type="image/png")

    async def submit(request: Request) -> Response:
        total = limit * MAX_FILES + 1_000_000
        if int(request.headers.get("content-length") or 0) > total:
            return _error(f"the upload is larger than {total / 1e6:.0f} MB in all", 413)
        form = await Request(request.scope, _limited(request.receive, total)).form(max_files=MAX_FILES, max_fields=50)
        session = str(form.get("session") or "")
        if not SESSION.match(session):
            return _error("missing or malformed session id; reload the page")
        content = form.get("content")
        styles = [s for s in form.getlist("style") if isinstance(s, UploadFile)]
        if not isinstance(content, UploadFile):
            return _error("choose a content image")
        if not styles or len(styles) > MAX_STYLES:
            return _error(f"choose 1 to {MAX_STYLES} style images")
        files: list[Any] = []  # (file name, bytes): the content, then the styles
        masks: dict[str, list[Any]] = {f: [] for f in MASK_FIELDS}  # per style, (file name, bytes) or None
        uploads: list[tuple[list[Any], Any]] = [(files, u) for u in (content, *styles)]
        uploads += [(masks[f], form.get(f"{f}{i}")) for f in MASK_FIELDS for i in range(len(styles))]
        for into, upload in uploads:
            if not isinstance(upload, UploadFile):
                into.append(None)  # no mask for this style
                continue
            data = await upload.read()
            if len(data) > limit:
                return _error(
                    f"{_upload_name(upload)} is {len(data) / 1e6:.1f} MB, more than the limit of {max_upload_mb:g} "
                    "MB per image; use a smaller file (or start nst-web with a larger --max-upload-mb)",
                    413,
                )
            into.append((_upload_name(upload), data))
        try:
            options = parse_options(form)
            arrays = await run_in_threadpool(decode, files, workdir, max_pixels)
            work = Work(arrays[0], arrays[1:], files[0][0], [name for name, _ in files[1:]], options)
            work = await run_in_threadpool(_with_masks, work, masks, workdir, max_pixels)
            await run_in_threadpool(_check_plan, model, work)
        except (OptionError, NSTError) as e:
            failure = plan_error(e)
            return _error(str(failure), **failure.details)
        job = state["queue"].submit(Job(session, work))
        return JSONResponse({"job": job.id, "position": state["queue"].position(job)})

    async def stop(request: Request) -> Response:
        job = job_of(request)
        return JSONResponse({"job": job.id, "stopping": state["queue"].stop(job.id)})

    async def download(request: Request) -> Response:
        job = job_of(request)
        if job.output is None:
            raise HTTPException(404, f"this run has no result ({job.state})")
        stem = Path(job.work.content_name).stem or "image"
        kind = request.path_params["kind"]
        if kind not in ("result.png", "log.json", "thumb.jpg"):
            raise HTTPException(404, "a run offers result.png, log.json and thumb.jpg")
        if kind == "thumb.jpg":
            return Response(job.output.thumb, media_type="image/jpeg")
        path, suffix = (job.output.png, ".png") if kind == "result.png" else (job.output.log, ".json")
        return FileResponse(path, filename=f"{stem}-stylized{suffix}")

    async def events(request: Request) -> Response:
        session = request.path_params["session"]
        if not SESSION.match(session):
            raise HTTPException(400, "malformed session id; reload the page")
        queue, hub = state["queue"], state["hub"]
        inbox = hub.subscribe(session)

        async def stream() -> AsyncIterator[str]:
            try:
                runs = [summary(queue, j) for j in sorted(queue.jobs_of(session), key=lambda j: j.created)]
                yield _sse({"type": "runs", "runs": runs})
                while not closing.is_set():
                    try:
                        event = await asyncio.wait_for(inbox.get(), 1.0)
                    except asyncio.TimeoutError:
                        yield ": idle\n\n"  # a write each second: a closed tab is noticed when it fails
                        continue
                    if event.get("type") == "state":  # with what the runs list shows
                        job = queue.get(event["job"])
                        event = {**event, **summary(queue, job)} if job is not None else event
                    yield _sse(event)
            finally:
                hub.unsubscribe(session, inbox)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.detail, exc.status_code)

    async def bug(request: Request, exc: Exception) -> Response:
        return _error(f"unexpected {type(exc).__name__}: {exc} (this is a bug; please report it)", 500)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/app.js", script),
            Route("/api/config", config),
            Route("/api/examples/{name}.png", example),
            Route("/api/jobs", submit, methods=["POST"]),
            Route("/api/jobs/{job}/stop", stop, methods=["POST"]),
            Route("/api/jobs/{job}/{kind:str}", download),
            Route("/api/sessions/{session}/events", events),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: bug},
    )
    app.state.closing = closing
    return app


def _release_when_finished(job: Job, event: dict) -> None:
    if event.get("type") == "state" and event["state"] in FINISHED:
        job.work.release()


def _sse(event: dict) -> str:
    return f"data: {json.dumps(json_safe(event), separators=(',', ':'))}\n\n"


def _with_masks(
    work: Work, masks: dict[str, list[tuple[str, bytes] | None]], workdir: Path, max_pixels: int | None
) -> Work:
    """The work with its masks (per field, per style an upload or None) decoded by the engine's load_mask and named
    in the options by their uploads' file names, as nst-run names them by path: the log records them."""
    from ..engine import ImageError
    from ..engine.images import load_mask

    given: dict[str, Any] = {}
    for field, uploads in masks.items():
        if all(u is None for u in uploads):
            continue
        chosen = [u for u in uploads if u is not None]
        try:
            arrays = iter(decode(chosen, workdir, max_pixels, load_mask))
        except ImageError as e:
            raise ImageError(f"{field.replace('_', ' ')}: {e}") from None
        given[field] = [None if u is None else next(arrays) for u in uploads]
        given[f"{field}_labels"] = tuple(NO_MASK if u is None else _mask_label(u[0]) for u in uploads)
    if not given:
        return work
    options = dataclasses.replace(
        work.options, style_masks=given.get("mask_labels"), style_source_masks=given.get("source_mask_labels")
    )
    return dataclasses.replace(work, options=options, masks=given.get("mask"), source_masks=given.get("source_mask"))


def _mask_label(name: str) -> str:
    """A file called "none" would read as no mask in the plan's check of labels against arrays, and in the log."""
    return f"{name} (upload)" if name == NO_MASK else name


def _check_plan(model: Any, work: Work) -> None:
    """Refuse what can never run (a size too small for the model, bad combinations) at once, before queueing; the
    memory check waits until the job starts, when the memory it will have is known."""
    from ..engine import plan_run

    plan_run(
        model.manifest,
        work.content.shape[:2],
        [s.shape[:2] for s in work.styles],
        work.options,
        style_names=[f"style image {n}" for n in work.style_names],
        style_masks=work.masks,
        style_source_masks=work.source_masks,
    )
