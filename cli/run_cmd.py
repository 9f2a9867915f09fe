"""nst-run: stylize a content image with one or more style images on an exported model. No torch on this path.

run() reads top to bottom: parse the command line into StylizeOptions -> load the model and images -> plan ->
stylize (with a progress bar) -> write the image and the log. Each step is a function below; every failure leaves
through `fail` as one line with its exit code."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..engine.images import DEFAULT_MAX_PIXELS
from ..engine.manifest import DEFAULT_MODEL_DIR
from ..engine.options import NO_MASK, OptionError, StylizeOptions, flag, init_is_image
from .common import INTERRUPTED, USAGE_ERROR, MaxPixels, ModelDir, fail, guard, one_line_command, say
from .options_cli import option_error, stylize_options
from .outputs import check_writable, frame_path, result_facts, run_record, write_log
from .progress import ProgressBar, terms_text
from .run_report import check_report, write_report

PROG = "nst-run"
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)

__all__ = ["app", "frame_path", "main"]


def check_command_line(out: Path, log_json: Path | None, options: StylizeOptions) -> None:
    from ..engine import NSTError
    from ..engine.images import check_output_path

    try:
        check_output_path(out)
    except NSTError as e:
        raise fail(PROG, str(e), USAGE_ERROR) from None
    if init_is_image(options.init) and not Path(options.init).exists():
        raise fail(
            PROG, f"--init {options.init!r} is neither content, noise, mix:R nor an existing image file", USAGE_ERROR
        )
    for path in (out, log_json):
        problem = path is not None and check_writable(path)
        if problem:
            raise fail(PROG, problem)


def load_inputs(model_dir: Path, images: list[Path], options: StylizeOptions, max_pixels: int) -> tuple[Any, ...]:
    """(model, content, styles, init image or None), or exit 1 naming the file at fault."""
    from ..engine import NSTError, load_image, load_model

    try:
        model = load_model(model_dir, options.device, arena=options.arena)
        content = load_image(images[0], max_pixels)
        styles = [load_image(p, max_pixels) for p in images[1:]]
        init = load_image(options.init, max_pixels) if init_is_image(options.init) else None
    except NSTError as e:
        raise fail(PROG, str(e)) from None
    return model, content, styles, init


def load_masks(options: StylizeOptions, max_pixels: int) -> tuple[list[Any] | None, list[Any] | None]:
    """The --style-mask and --style-source-mask files as grey arrays (None for `none`); an unreadable one is a bad
    command line (exit 2): nothing has run yet."""
    from ..engine import NSTError
    from ..engine.images import load_mask

    def load(name: str) -> list[Any] | None:
        paths = getattr(options, name)
        if paths is None:
            return None
        try:
            return [None if p == NO_MASK else load_mask(p, max_pixels) for p in paths]
        except NSTError as e:
            raise fail(PROG, f"{flag(name)}: {e}", USAGE_ERROR) from None

    return load("style_masks"), load("style_source_masks")


def make_plan(
    model: Any, content: Any, styles: list[Any], style_paths: list[Path], options: StylizeOptions, masks: tuple
) -> Any:
    from ..engine import NSTError
    from ..engine.plan import plan_for_model

    try:
        plan = plan_for_model(
            model,
            content.shape[:2],
            [s.shape[:2] for s in styles],
            options,
            style_names=[f"style image {p}" for p in style_paths],
            style_masks=masks[0],
            style_source_masks=masks[1],
        )
    except OptionError as e:
        raise option_error(PROG, e) from None
    except NSTError as e:
        raise fail(PROG, str(e)) from None
    for warning in plan.warnings:
        say(PROG, f"warning: {warning}")
    return plan


def report_failure(error: Exception, out: Path, log_json: Path | None, record: dict) -> typer.Exit:
    """A run that failed part-way: keep what was reached (the best finite image, the history) and say so."""
    from ..engine import NonFiniteError, save_image

    if isinstance(error, NonFiniteError):
        try:
            if error.image is not None:
                save_image(error.image, out)
            write_log(
                log_json,
                {
                    **record,
                    "history": error.history,
                    "iterations": len(error.history),
                    "error": str(error),
                    "interrupted": False,
                },
            )
        except OSError as e:
            return fail(PROG, f"{error}; and writing {out} failed too ({e.strerror or e})")
        kept = (
            f"the best finite image so far was written to {out}" if error.image is not None else "nothing was written"
        )
        return fail(PROG, f"{error}; {kept}")
    if isinstance(error, ValueError):
        return fail(PROG, str(error), USAGE_ERROR)
    assert isinstance(error, OSError)  # an intermediate frame could not be written
    return fail(
        PROG,
        f"cannot write an intermediate image beside {out} ({error.strerror or error}); check the free "
        "space and permissions, or drop --save-every",
    )


def write_result(result: Any, out: Path, log_json: Path | None, record: dict) -> None:
    from ..engine import save_image

    if result.interrupted and not math.isfinite(result.loss):
        raise fail(PROG, "interrupted before the first evaluation finished; nothing was written", INTERRUPTED)
    facts = result_facts(result)
    for target, write in (
        (out, lambda: save_image(result.image, out)),
        (log_json, lambda: write_log(log_json, {**record, **facts})),
    ):
        try:
            write()
        except OSError as e:
            raise fail(
                PROG, f"cannot write {target} ({e.strerror or e}); check the free space and permissions"
            ) from None


@app.command(
    help="Stylize CONTENT with STYLE images (Gatys et al.) and write the result to -o OUT.",
    epilog="Exit codes: 0 done, 1 failed (one 'nst-run: error:' line on stderr; OUT untouched unless the "
    "message says otherwise), 2 bad command line, 130 Ctrl-C (the best image so far is written).",
    cls=one_line_command(PROG),
)
@guard(PROG, "interrupted before the optimisation started; nothing was written")
@stylize_options(PROG)
def run(
    images: Annotated[list[Path], typer.Argument(help="CONTENT STYLE [STYLE ...]", show_default=False)],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help=(
                "Output image (.png .jpg .jpeg .webp .tif .tiff); missing parent directories are created. An existing "
                "file is replaced only by a complete new image."
            ),
        ),
    ] = Path("out.png"),
    model: ModelDir = DEFAULT_MODEL_DIR,
    save_every: Annotated[
        int, typer.Option(min=0, help="Write the current image every N iterations beside OUT (0: never).")
    ] = 0,
    log_json: Annotated[Optional[Path], typer.Option(help="Write the loss history and run facts as JSON.")] = None,
    report: Annotated[
        Optional[Path],
        typer.Option(help="After the run, a picture of it: content, style(s), output, loss curves (log scale)."),
    ] = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    *,
    options: StylizeOptions,
) -> None:
    if len(images) < 2:
        raise fail(
            PROG, "give a content image and at least one style image: nst-run CONTENT STYLE [STYLE ...]", USAGE_ERROR
        )
    check_command_line(out, log_json, options)
    check_report(PROG, report)

    t_setup = time.perf_counter()
    nst_model, content, styles, init_image = load_inputs(model, images, options, max_pixels)
    masks = load_masks(options, max_pixels)
    plan = make_plan(nst_model, content, styles, images[1:], options, masks)
    record = run_record(options, images[0], images[1:], nst_model, plan)
    result, error = stylize_with_progress(nst_model, content, styles, init_image, plan, out, save_every, quiet)
    record["setup_seconds"] = time.perf_counter() - t_setup - (result.seconds if result else 0.0)
    if error is not None:
        raise report_failure(error, out, log_json, record)
    write_result(result, out, log_json, record)
    write_report(PROG, report, images, content, styles, result, masks[0])
    if result.interrupted:
        stages = len(result.plan.stages)
        where = f" in stage {result.stage}/{stages}, resized to the final size," if result.stage < stages else ""
        say(
            PROG, f"interrupted after {result.iterations} iterations; the best image so far{where} was written to {out}"
        )
        raise typer.Exit(INTERRUPTED)
    if not quiet:
        typer.echo(
            f"J={result.loss:.5g} ({terms_text(result.terms)}) after {result.iterations} iterations, "
            f"{result.evaluations} evaluations, {result.seconds:.1f} s on {result.provider} -> {out}"
        )
    if result.early_stop:  # even with --quiet: the image may be far from what the user expects
        say(PROG, f"note: L-BFGS stopped early: {result.early_stop}; {early_stop_advice(result)}")


def early_stop_advice(result: Any) -> str:
    """What to try after an early stop: the weights' scale first when the plan warned about it."""
    plan = result.plan
    if plan is not None and plan.warnings:
        return (
            f"the weights are off this model's scale: try --style-weight {plan.recommended_style_weight:.3g} at "
            f"--content-weight {plan.content_weight:g}"
        )
    return "more iterations will not change the image; try other weights or a noise --init"


def stylize_with_progress(
    model: Any, content: Any, styles: list[Any], init_image: Any, plan: Any, out: Path, save_every: int, quiet: bool
) -> tuple[Any, Exception | None]:
    """Run the engine with a progress bar and --save-every frames; (result, None) or (None, the error)."""
    from ..engine import NonFiniteError, save_image, stylize

    bar = None if quiet else ProgressBar("stylizing")
    several = len(plan.stages) > 1

    def on_progress(p: Any) -> None:
        if bar is not None:
            bar.update(p)
        if save_every and p.iteration % save_every == 0 and p.iteration < p.iterations:
            save_image(p.image(), frame_path(out, p.iteration, p.stage if several else None))

    try:
        with bar if bar is not None else contextlib.nullcontext():
            return stylize(
                model, content, styles, plan.options, callback=on_progress, init_image=init_image, plan=plan
            ), None
    except (NonFiniteError, ValueError, OSError) as e:
        return None, e


def main() -> None:
    app(prog_name=PROG)
