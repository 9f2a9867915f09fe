"""The batch API beside stylize(): run_batch(...) -> an iterator of JobResult, one per job, as jobs finish.

    from nst.batch import build_jobs, run_batch
    jobs = build_jobs(["photos/"], ["starry.jpg", "scream.jpg"], "out/")
    for r in run_batch(jobs, "out/", StylizeOptions(size=256), model_dir="models/vgg19"):
        print(r.job.name, r.status, r.error)

Jobs already done with the same options (their output exists, their last record says so) come first as "skipped";
the others run on the executor and come back "done" or "failed". The driver writes every output (atomically) and
appends every record to OUTDIR/batch.jsonl before yielding the result, so whatever has been yielded survives Ctrl-C or
a crash, and a rerun continues."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..engine.files import atomic_write
from ..engine.manifest import DEFAULT_MODEL_DIR, read_manifest
from ..engine.model import cpu_count
from ..engine.options import StylizeOptions
from .jobs import Job
from .local import LocalExecutor, default_split
from .record import (
    RECORD_FILE,
    append_record,
    batch_lock,
    is_done,
    job_fields,
    latest_records,
    remove_strays,
)
from .worker import Outcome, Task

Status = Literal["done", "failed", "skipped"]
EXECUTORS = ("local", "ray")


@dataclass
class JobResult:
    job: Job
    status: Status
    error: str | None = None  # one line, for a failed job
    record: dict[str, Any] = field(default_factory=dict)  # what batch.jsonl holds for it (the earlier one if skipped)
    attempts: int = 0

    @property
    def seconds(self) -> float:
        return float(self.record.get("seconds") or 0.0)


def _per_job_bytes(model_dir: Path, manifest: Any, options: StylizeOptions) -> int:
    """A generous per-worker memory estimate (a square image at --size) for choosing the default worker count."""
    from ..engine import memory

    weights = (model_dir / manifest.weights.file).stat().st_size
    return memory.estimate_bytes(manifest, options.size, options.size, options.lbfgs_pairs, weights, options.optimizer)


class BatchRun(Iterator[JobResult]):
    """What run_batch returns: iterate it to run the batch. `total`, `todo`, `skipped` are known before the first
    result; `running` is the number of jobs in progress; `record_path` is OUTDIR/batch.jsonl."""

    def __init__(
        self,
        jobs: Sequence[Job],
        outdir: Path,
        options: StylizeOptions,
        model_dir: Path,
        executor: Callable[[int], Any],
        force: bool,
        max_pixels: int | None,
    ):
        self.outdir, self.options, self.model_dir = outdir, options, model_dir
        self.manifest = read_manifest(model_dir)  # a broken model stops the batch here, before any worker starts
        self.max_pixels = max_pixels
        self.record_path = outdir / RECORD_FILE
        self.fields = {job.name: job_fields(job, options, self.manifest.id) for job in jobs}
        latest = {} if force or not outdir.is_dir() else latest_records(outdir)
        self.skipped = [job for job in jobs if not force and is_done(job, self.fields[job.name], latest)]
        skipped = set(self.skipped)
        self.todo = [job for job in jobs if job not in skipped]
        self.total = len(jobs)
        self._latest = latest
        self.executor = executor(len(self.todo))  # the local pool or Ray; workers start on the first next()
        self._stack: contextlib.ExitStack | None = None
        self._it = self._run()

    @property
    def running(self) -> int:
        return int(getattr(self.executor, "running", 0))

    def __next__(self) -> JobResult:
        return next(self._it)

    def close(self) -> None:
        """Stop the workers now (also what happens on Ctrl-C or when the iteration is abandoned)."""
        self._it.close()
        self._release()

    def _task(self, job: Job) -> Task:
        return Task(
            job.name, str(job.content), str(job.style), job.options(self.options), self.max_pixels, job.out.suffix
        )

    def _finish(self, job: Job, outcome: Outcome, attempts: int) -> JobResult:
        facts = dict(outcome.facts)
        if outcome.ok and outcome.image is not None:
            data = outcome.image
            try:
                atomic_write(job.out, lambda f: f.write(data))
            except OSError as e:
                facts.update(
                    status="failed",
                    error=f"cannot write {job.out} ({e.strerror or e}); check the free space and permissions",
                )
        record = {**self.fields[job.name], **facts, "attempts": attempts, "executor": self.executor.name}
        append_record(self.outdir, record)
        return JobResult(job, record["status"], record.get("error"), record, attempts)

    def start(self) -> None:
        """Take OUTDIR's lock, remove half-written outputs of a killed run, start the executor (Ray: connect, start
        the workers, load the model in each). Iterating calls it; call it first to see setup errors before results."""
        if self._stack is not None:
            return
        self.outdir.mkdir(parents=True, exist_ok=True)
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(batch_lock(self.outdir))
            remove_strays(self.outdir, [*self.skipped, *self.todo])  # their jobs are redone (or done already)
            if self.todo and hasattr(self.executor, "start"):
                self.executor.start(len(self.todo))
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._stack is not None:
            self._stack.close()
        if hasattr(self.executor, "close"):
            self.executor.close()

    def _run(self) -> Generator[JobResult, None, None]:
        try:
            self.start()
            for job in self.skipped:
                yield JobResult(job, "skipped", None, dict(self._latest.get(job.name, {})), 0)
            if not self.todo:
                return
            by_name = {job.name: job for job in self.todo}
            for task, outcome, attempts in self.executor.results(self._task(job) for job in self.todo):
                yield self._finish(by_name[task.name], outcome, attempts)
        finally:
            self._release()


def make_executor(
    kind: str,
    model_dir: Path,
    options: StylizeOptions,
    jobs: int,
    *,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    cpus_per_job: float = 1.0,
    gpus_per_job: float = 0.0,
) -> Any:
    """A LocalExecutor (workers x threads <= cores by default) or a RayExecutor (BatchSetupError without Ray)."""
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(
            model_dir,
            address=address,
            workers=workers,
            threads=threads,
            cpus_per_job=cpus_per_job,
            gpus_per_job=gpus_per_job,
            options=options,
        )
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")
    cores = cpu_count()
    if workers is None:
        from ..engine import memory

        per_job = _per_job_bytes(model_dir, read_manifest(model_dir, check_files=False), options)
        workers, split_threads = default_split(cores, jobs, per_job, memory.available_bytes())
        threads = threads or split_threads
    return LocalExecutor(model_dir, workers, threads or max(1, cores // workers))


def run_batch(
    jobs: Sequence[Job],
    outdir: str | Path,
    options: StylizeOptions | None = None,
    *,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    executor: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    force: bool = False,
    address: str | None = None,
    cpus_per_job: float = 1.0,
    gpus_per_job: float = 0.0,
    max_pixels: int | None = None,
) -> BatchRun:
    """Run `jobs` (from build_jobs) into outdir; iterate the result to run them (see BatchRun). Raises ModelError for
    an unusable model and, on iteration, BatchSetupError (Ray missing or unreachable) or BatchLockedError."""
    options = options or StylizeOptions()
    outdir, model_dir = Path(outdir), Path(model_dir)
    jobs = [dataclasses.replace(job, out=outdir / job.name) for job in jobs]

    def factory(todo: int) -> Any:
        return make_executor(
            executor,
            model_dir,
            options,
            todo,
            workers=workers,
            threads=threads,
            address=address,
            cpus_per_job=cpus_per_job,
            gpus_per_job=gpus_per_job,
        )

    return BatchRun(jobs, outdir, options, model_dir, factory, force, max_pixels)
