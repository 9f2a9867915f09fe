"""One job in a process that keeps its model loaded: read the images, plan, stylize, encode the result as file bytes.

Executor-agnostic: the local pool and Ray actors both hold a JobRunner. Every failure of a job (unreadable image,
impossible size, NaN, out of memory, a bug) comes back as a failed Outcome with a one-line error; only the death of
the process itself escapes, and the executor handles that. The worker writes no files: the driver writes the
outputs (atomically) and the records, so a killed worker never leaves anything half-written."""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import NSTError
from ..engine.options import NO_MASK, OptionError, StylizeOptions, init_is_image


@dataclass(frozen=True)
class Task:
    """What a worker needs for one job (picklable). Paths are the driver's; `files` carries their bytes when the
    worker may not see the driver's file system (Ray)."""

    name: str
    content: str
    style: str
    options: StylizeOptions
    max_pixels: int | None  # None: Pillow's own limit
    suffix: str = ".png"
    files: Mapping[str, Any] | None = None  # path -> bytes (or a Ray ObjectRef the executor resolves)


@dataclass
class Outcome:
    facts: dict[str, Any]  # status, error, seconds, loss, terms, iterations, evaluations, size, provider, ...
    image: bytes | None = field(default=None, repr=False)  # the encoded output file when status is done

    @property
    def ok(self) -> bool:
        return self.facts.get("status") == "done"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(error: BaseException) -> str:
    """A job's failure as one line, in nst-run's words where the engine has them."""
    if isinstance(error, OptionError):
        return error.line
    if isinstance(error, (NSTError, ValueError)):
        return one_line(str(error))
    if isinstance(error, MemoryError):
        return "out of memory; try a smaller --size, --low-memory or fewer --workers"
    if isinstance(error, OSError):
        return one_line(f"{error.strerror or error} ({error.filename})" if error.filename else str(error))
    return one_line(f"unexpected {type(error).__name__}: {error} (this is a bug; please report it)")


def failed(error: str, started: float) -> Outcome:
    return Outcome(
        {"status": "failed", "error": error, "seconds": time.perf_counter() - started, "worker": worker_id()}
    )


def encode_image(image: Any, suffix: str) -> bytes:
    """(H, W, 3) [0, 1] -> the bytes save_image would write for this extension."""
    from PIL import Image

    from ..engine.images import check_output_path, to_uint8

    fmt = check_output_path(Path(f"x{suffix}"))
    buffer = io.BytesIO()
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(to_uint8(image), "RGB").save(buffer, format=fmt, **extra)
    return buffer.getvalue()


@contextmanager
def local_files(task: Task) -> Iterator[dict[str, str]]:
    """The task's input paths as this process can open them: the driver's own, or shipped bytes in a temporary folder
    (named as the originals, so messages name the same files)."""
    if task.files is None:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="nst-batch-") as tmp:
        mapping = {}
        for i, (original, data) in enumerate(task.files.items()):
            local = Path(tmp) / str(i) / Path(original).name
            local.parent.mkdir()
            local.write_bytes(data)
            mapping[original] = str(local)
        yield mapping


class JobRunner:
    """Holds the loaded model(s) of one worker process: one per device asked for, loaded once."""

    def __init__(self, model_dir: str | Path, threads: int | None = None):
        self.model_dir, self.threads = Path(model_dir), threads
        self._models: dict[tuple[str, str], Any] = {}
        self.load_seconds = 0.0

    def model(self, options: StylizeOptions) -> Any:
        from ..engine.model import load_model

        key = (options.device, options.arena)
        if key not in self._models:
            t0 = time.perf_counter()
            self._models[key] = load_model(self.model_dir, options.device, threads=self.threads, arena=options.arena)
            self.load_seconds += time.perf_counter() - t0
        return self._models[key]

    def run(self, task: Task) -> Outcome:
        started = time.perf_counter()
        try:
            with local_files(task) as mapping:
                try:
                    return self._run(task, mapping, started)
                except (NSTError, ValueError, OSError) as e:  # name the driver's files, not the shipped copies
                    message = describe(e)
                    for original, local in mapping.items():
                        message = message.replace(local, original)
                    return failed(message, started)
        except Exception as e:  # a job's failure (a bug included) must not end the batch
            return failed(describe(e), started)

    def _run(self, task: Task, mapping: Mapping[str, str], started: float) -> Outcome:
        from ..engine import load_image, stylize
        from ..engine.images import load_mask
        from ..engine.plan import plan_for_model

        def masks(paths: tuple[str, ...] | None) -> list[Any] | None:
            if paths is None:
                return None
            return [None if p == NO_MASK else load_mask(mapping.get(p, p), task.max_pixels) for p in paths]

        loaded = self.load_seconds
        options = task.options
        model = self.model(options)
        content = load_image(mapping.get(task.content, task.content), task.max_pixels)
        style = load_image(mapping.get(task.style, task.style), task.max_pixels)
        init = None
        if init_is_image(options.init):
            init = load_image(mapping.get(options.init, options.init), task.max_pixels)
        plan = plan_for_model(
            model,
            content.shape[:2],
            [style.shape[:2]],
            options,
            style_names=[f"style image {task.style}"],
            style_masks=masks(options.style_masks),
            style_source_masks=masks(options.style_source_masks),
        )
        result = stylize(model, content, [style], init_image=init, plan=plan)
        if result.interrupted:
            return failed("interrupted", started)
        image = encode_image(result.image, task.suffix)
        regions = {} if plan.regions is None else {"regions": plan.regions.resolved()}  # mask files and coverage
        return Outcome(
            {
                **regions,
                "status": "done",
                "error": None,
                "seconds": time.perf_counter() - started,
                "optimise_seconds": result.seconds,
                "load_seconds": self.load_seconds - loaded,  # loading the model: a worker's first job
                "loss": result.loss,
                "terms": result.terms,
                "parts": result.parts,
                "iterations": result.iterations,
                "evaluations": result.evaluations,
                "size": list(plan.size),
                "provider": result.provider,
                "message": result.message,
                "early_stop": result.early_stop,
                "warnings": list(plan.warnings),
                "worker": worker_id(),
            },
            image,
        )
