"""nst-batch: stylize many content x style pairs on a local process pool (default) or a Ray cluster; resumable.

Thin: the jobs, the executors, the records and the resume rule live in nst.batch (run_batch). This file parses the
command line, shows one progress bar over the jobs and turns the outcome into an exit code: 0 all done (or skipped as
done before), 1 some failed (one summary line), 2 bad command line, 130 Ctrl-C or SIGTERM (finished outputs and
records kept)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from ..engine.images import DEFAULT_MAX_PIXELS
from ..engine.manifest import DEFAULT_MODEL_DIR
from ..engine.options import StylizeOptions, init_is_image
from .batch_progress import Counts, drive
from .common import INTERRUPTED, USAGE_ERROR, MaxPixels, ModelDir, fail, guard, one_line_command, say
from .options_cli import stylize_options

PROG = "nst-batch"
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


# The command's own options (nst-run's come from StylizeOptions through @stylize_options).
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).", show_default=False)]
Contents = Annotated[
    Optional[list[str]],
    typer.Argument(
        help="Content images: files, folders (their images) or quoted globs ('photos/*.jpg').", show_default=False
    ),
]
Styles = Annotated[
    Optional[list[str]],
    typer.Option(
        "--style",
        "-s",
        show_default=False,
        help="Style image(s), folder or glob; repeat for several. Each content x each style is a job.",
    ),
]
Pairs = Annotated[
    Optional[Path],
    typer.Option(
        help="CSV with a header row: content, style and optional nst-run option columns (iterations, "
        "style_weight, ...); one job per row; relative paths are relative to the CSV."
    ),
]
Executor = Annotated[
    Literal["local", "ray"],
    typer.Option(help="local: worker processes on this machine; ray: Ray actors (needs pip install 'nst[ray]')."),
]
Workers = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        show_default=False,
        help="Worker processes (each loads the model once) [default: local: one per core, fewer if jobs "
        "or memory are fewer; ray: the cluster's CPUs / --cpus-per-job].",
    ),
]
Threads = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        show_default=False,
        help="onnxruntime threads per worker [default: local: cores / workers; ray: --cpus-per-job].",
    ),
]
Address = Annotated[
    Optional[str],
    typer.Option(
        show_default=False,
        help="Ray cluster address (ray://host:10001 or host:6379, or auto) [default: start Ray on this machine].",
    ),
]
CpusPerJob = Annotated[float, typer.Option(min=0.0, help="Ray: CPUs reserved per worker.")]
GpusPerJob = Annotated[float, typer.Option(min=0.0, help="Ray: GPUs reserved per worker (with --device auto or cuda).")]


def _start(
    jobs: list[Any],
    out: Path,
    options: StylizeOptions,
    model: Path,
    executor: str,
    workers: int | None,
    threads: int | None,
    force: bool,
    address: str | None,
    cpus_per_job: float,
    gpus_per_job: float,
    max_pixels: int,
) -> Any:
    from ..batch import run_batch
    from ..engine import NSTError

    try:
        return run_batch(
            jobs,
            out,
            options,
            model_dir=model,
            executor=executor,
            workers=workers,
            threads=threads,
            force=force,
            address=address,
            cpus_per_job=cpus_per_job,
            gpus_per_job=gpus_per_job,
            max_pixels=max_pixels,
        )
    except NSTError as e:
        raise fail(PROG, str(e)) from None


@app.command(
    help="Stylize every CONTENT with every --style (or the rows of --pairs FILE.csv) into -o OUTDIR as "
    "OUTDIR/<content>__<style>.png, recording each job in OUTDIR/batch.jsonl. A rerun skips the jobs "
    "already done with the same options.",
    epilog="Exit codes: 0 all done, 1 some jobs failed (see OUTDIR/batch.jsonl), 2 bad command line, "
    "130 Ctrl-C (finished outputs and records are kept; rerun to continue).",
    cls=one_line_command(PROG),
)
@guard(PROG, "interrupted before any job finished; rerun the same command to start again")
@stylize_options(PROG)
def batch(
    out: Out,
    contents: Contents = None,
    style: Styles = None,
    pairs: Pairs = None,
    model: ModelDir = DEFAULT_MODEL_DIR,
    executor: Executor = "local",
    workers: Workers = None,
    threads: Threads = None,
    address: Address = None,
    cpus_per_job: CpusPerJob = 1.0,
    gpus_per_job: GpusPerJob = 0.0,
    force: Annotated[bool, typer.Option("--force", help="Redo jobs already done.")] = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="One line per finished job.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    *,
    options: StylizeOptions,
) -> None:
    from ..batch import BatchLockedError, JobError, build_jobs
    from ..engine import NSTError

    if address and executor != "ray":
        raise fail(PROG, "--address is for --executor ray", USAGE_ERROR)
    if init_is_image(options.init) and not Path(options.init).is_file():
        raise fail(
            PROG, f"--init {options.init!r} is neither content, noise, mix:R nor an existing image file", USAGE_ERROR
        )
    try:
        jobs = build_jobs(contents or [], style or [], out, pairs, options)
    except JobError as e:
        raise fail(PROG, str(e), USAGE_ERROR) from None
    run = _start(
        jobs, out, options, model, executor, workers, threads, force, address, cpus_per_job, gpus_per_job, max_pixels
    )
    counts = Counts(run)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the workers and keeps what is done, like Ctrl-C
    try:
        run.start()  # setup errors (OUTDIR locked, Ray unreachable, a worker cannot load the model) before the bar
        counts.started = time.perf_counter()
        drive(run, counts, quiet, verbose)
    except KeyboardInterrupt:
        run.close()
        left = len(run.todo) - counts.done - counts.failed
        say(
            PROG,
            f"interrupted: {counts.done} jobs done, {counts.skipped} skipped, {counts.failed} failed, {left} not "
            f"finished; outputs and records so far are in {out}; rerun the same command to continue",
        )
        raise typer.Exit(INTERRUPTED) from None
    except (BatchLockedError, NSTError) as e:  # OUTDIR locked, Ray unreachable, a model a worker cannot load
        raise fail(PROG, str(e)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    _summary(run, counts, quiet, out)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _summary(run: Any, counts: Counts, quiet: bool, out: Path) -> None:
    seconds = time.perf_counter() - counts.started
    if counts.failed:
        raise fail(
            PROG,
            f"{counts.failed} of {run.total} jobs failed (first: {counts.first_error}); {counts.done} "
            f"done, {counts.skipped} skipped; see {run.record_path}",
        )
    if not quiet:
        typer.echo(
            f"{run.total} jobs: {counts.done} done, {counts.skipped} skipped (done before) in {seconds:.1f} s "
            f"-> {out}/ (records: {run.record_path})"
        )


def main() -> None:
    app(prog_name=PROG)
