"""One nst-web job: plan (with nst-run's memory check), stylize with a callback that reports every iteration and a
preview every few, write the PNG and the JSON log (nst-run's --log-json record) into the server's folder.

The engine is called exactly as nst-run calls it; a Stop from the page sets the job's flag, and the callback raises
StopIteration, which ends the run with the best image so far."""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..cli.outputs import result_facts, run_record, write_log
from ..engine.errors import MemoryEstimateError, NSTError, SizeError
from ..engine.images import fit_long_side, resize, save_image, to_uint8
from ..engine.options import OptionError, StylizeOptions
from ..engine.plan import plan_for_model
from .form import option_message
from .jobs import Job, JobFailed
from .progress import progress_event

PREVIEW_EVERY = 5  # iterations between previews (and a stage's first and last); about 1 s apart at 384 px on 2 cores
THUMB_SIDE = 160


@dataclass
class Work:
    """A job's inputs, decoded and checked when it was submitted."""

    content: np.ndarray  # (H, W, 3) float32
    styles: list[np.ndarray]
    content_name: str  # the uploads' file names (never a server path): for the log and the page
    style_names: list[str]
    options: StylizeOptions  # names the masks by their uploads' file names (style_masks, style_source_masks)
    masks: list[np.ndarray | None] | None = None  # per style, (H, W) float32 in the content's frame, or None
    source_masks: list[np.ndarray | None] | None = None  # per style, in its style image's frame, or None

    def release(self) -> None:
        """Drop the decoded images once the job has finished (a full-size photo is 12 bytes a pixel as float32);
        the names and options stay for the runs list."""
        self.content, self.styles = np.zeros((0, 0, 3), np.float32), []
        self.masks = self.source_masks = None


@dataclass
class Output:
    png: Path
    log: Path
    thumb: bytes  # JPEG
    summary: dict


@dataclass
class Timing:
    """Where the server's own time goes in a run (for bench/web_overhead.py): encoding previews."""

    previews: int = 0
    preview_seconds: float = 0.0


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image), "RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def data_url(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg(image)).decode()


def plan_error(e: Exception) -> JobFailed:
    """The engine's refusal in the page's words: options are named as the form names them."""
    if isinstance(e, OptionError):
        return JobFailed(option_message(e))
    if isinstance(e, MemoryEstimateError):
        return JobFailed(str(e).replace("--size", "size"), fits=e.fits)
    if isinstance(e, SizeError):
        return JobFailed(str(e).replace("--size", "size"), smallest=e.smallest)
    return JobFailed(str(e))


class StylizeRunner:
    """Runs jobs on one loaded model, writing results under `folder/<job id>/`."""

    def __init__(self, model: Any, folder: Path, preview_every: int = PREVIEW_EVERY):
        self.model, self.folder, self.preview_every = model, folder, preview_every

    def __call__(self, job: Job, emit: Any) -> Output:
        from ..engine import NonFiniteError, stylize

        work: Work = job.work
        started = time.perf_counter()
        try:
            names = [f"style image {n}" for n in work.style_names]
            plan = plan_for_model(
                self.model,
                work.content.shape[:2],
                [s.shape[:2] for s in work.styles],
                work.options,
                style_names=names,
                style_masks=work.masks,
                style_source_masks=work.source_masks,
            )
        except (OptionError, NSTError) as e:
            raise plan_error(e) from None
        emit({"type": "plan", "size": list(plan.size), "stages": [[*s.size, s.iterations] for s in plan.stages]})
        style_paths = [Path(n) for n in work.style_names]
        record = run_record(work.options, Path(work.content_name), style_paths, self.model, plan)
        timing = Timing()
        step = {"stage": 1, "before": 0, "last": 0}  # iterations of the finished stages: the plot's x axis

        def on_progress(p: Any) -> None:
            t = time.time()
            event = progress_event(p)
            if event["stage"] != step["stage"]:
                step["stage"], step["before"] = event["stage"], step["before"] + step["last"]
            step["last"] = event["iteration"]
            emit({**event, "step": step["before"] + event["iteration"]})
            i, n = event["iteration"], event["iterations"]
            if i == 1 or i == n or i % self.preview_every == 0:
                t0 = time.perf_counter()
                image = data_url(p.image())
                timing.previews += 1
                timing.preview_seconds += time.perf_counter() - t0
                emit({"type": "preview", "image": image, "stage": event["stage"], "size": event["size"], "t": t})
            if job.should_stop():
                raise StopIteration

        try:
            result = stylize(self.model, work.content, work.styles, plan.options, callback=on_progress, plan=plan)
        except NonFiniteError as e:
            raise JobFailed(str(e)) from None
        record["setup_seconds"] = time.perf_counter() - started - result.seconds
        folder = self.folder / job.id
        folder.mkdir(parents=True, exist_ok=True)
        png, log = folder / "result.png", folder / "log.json"
        save_image(result.image, png)
        write_log(log, {**record, **result_facts(result)})
        emit({"type": "preview", "image": data_url(result.image), "final": True, "size": list(result.image.shape[:2])})
        summary = {
            "loss": result.loss,
            "terms": result.terms,
            "iterations": result.iterations,
            "seconds": result.seconds,
            "stopped": result.stopped,
            "previews": timing.previews,
            "preview_seconds": timing.preview_seconds,
            "run_seconds": time.perf_counter() - started,
        }
        emit({"type": "result", **summary})
        thumb = jpeg(resize(result.image, fit_long_side(*result.image.shape[:2], THUMB_SIDE)), 85)
        return Output(png, log, thumb, summary)
