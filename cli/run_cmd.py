"""nst-run: stylize a content image with one or more style images on an exported model. No torch on this path."""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..engine.stylize import DEFAULT_ITERATIONS, DEFAULT_MAXCOR, mix_ratio
from .common import FAILURE, INTERRUPTED, USAGE_ERROR, fail, guard, one_line_command, say, split_names

PROG = "nst-run"
DEFAULT_MODEL = Path("models/vgg19")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


def _floats(option: str, values: list[str] | None) -> list[float] | None:
    names = split_names(values)
    if names is None:
        return None
    try:
        out = [float(v) for v in names]
    except ValueError:
        raise fail(PROG, f"{option} takes numbers, got {' '.join(names)!r}", USAGE_ERROR) from None
    bad = [v for v in out if not math.isfinite(v) or v < 0]
    if bad:
        raise fail(PROG, f"{option} values must be finite and >= 0, got {bad[0]}", USAGE_ERROR)
    return out


def _weight(option: str, value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise fail(PROG, f"{option} must be a finite number >= 0, got {value}", USAGE_ERROR)


def _writable_dir(path: Path) -> None:
    """Create the output's parent directory if needed and prove it is writable, before any long work."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nst-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise fail(PROG, f"cannot write to {parent}/ ({e.strerror or e}); choose another -o") from None
    if path.is_dir():
        raise fail(PROG, f"output {path} is a directory; give a file name such as {path}/out.png")


def _atomic_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a log is as readable as the image beside it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def frame_path(out: Path, iteration: int) -> Path:
    """Intermediate images sit beside OUT: out.png -> out.iter0050.png."""
    return out.with_name(f"{out.stem}.iter{iteration:04d}{out.suffix}")


def _finite_or_none(value):
    """JSON has no NaN/Infinity: write null for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


@app.command(help="Stylize CONTENT with STYLE images (Gatys et al.) and write the result to -o OUT.",
             epilog="Exit codes: 0 done, 1 failed (one 'nst-run: error:' line on stderr; OUT untouched unless the "
                    "message says otherwise), 2 bad command line, 130 Ctrl-C (the best image so far is written).",
             cls=one_line_command(PROG))
@guard(PROG, "interrupted before the optimisation started; nothing was written")
def run(
    images: Annotated[list[Path], typer.Argument(help="CONTENT STYLE [STYLE ...]", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help=(
        "Output image (.png .jpg .jpeg .webp .tif .tiff); missing parent directories are created. An existing file "
        "is replaced only by a complete new image."))] = Path("out.png"),
    model: Annotated[Path, typer.Option(help="Model directory written by nst-export.")] = DEFAULT_MODEL,
    size: Annotated[int, typer.Option(help="Working long side in px (the content is resized to it).")] = 512,
    iterations: Annotated[int, typer.Option(help="L-BFGS-B iterations.")] = DEFAULT_ITERATIONS,
    content_weight: Annotated[Optional[float], typer.Option(help="alpha [default: from the model's manifest].")] = None,
    style_weight: Annotated[Optional[float], typer.Option(help="beta [default: from the model's manifest].")] = None,
    style_layer_weights: Annotated[Optional[list[str]], typer.Option(
        help="lambda per style layer, e.g. '1,1,1,1,1' (normalised to sum 1) [default: equal].")] = None,
    content_layer: Annotated[Optional[str], typer.Option(help="Content layer [default: the model's].")] = None,
    style_layers: Annotated[Optional[list[str]], typer.Option(
        help="Style layers, comma- or space-separated, a subset of the model's taps [default: the model's].")] = None,
    style_blend: Annotated[Optional[list[str]], typer.Option(
        help="Weight per style image, e.g. '0.7,0.3' [default: equal].")] = None,
    style_scale: Annotated[float, typer.Option(help="Style images' long side = content's x this.")] = 1.0,
    tv_weight: Annotated[float, typer.Option(help="tau: squared total-variation weight (smoothness).")] = 0.0,
    init: Annotated[str, typer.Option(help="content, noise, mix:R (R in [0,1]), or an image path.")] = "content",
    seed: Annotated[int, typer.Option(help="Seed for noise inits.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    maxcor: Annotated[int, typer.Option(help="L-BFGS memory (correction pairs).")] = DEFAULT_MAXCOR,
    save_every: Annotated[int, typer.Option(help="Write the current image every N iterations beside OUT (0: never).")] = 0,
    log_json: Annotated[Optional[Path], typer.Option(help="Write the loss history and run facts as JSON.")] = None,
    max_pixels: Annotated[int, typer.Option(help="Refuse input images with more pixels (decompression-bomb guard).")] =
    DEFAULT_MAX_PIXELS,
    low_memory: Annotated[bool, typer.Option("--low-memory",
        help="Turn onnxruntime's CPU memory arena off: measured 26% less peak memory, 8% slower at 512 px.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    # --- the command line itself (exit 2) ---
    if len(images) < 2:
        raise fail(PROG, "give a content image and at least one style image: nst-run CONTENT STYLE [STYLE ...]",
                   USAGE_ERROR)
    for option, value in (("--iterations", iterations), ("--size", size), ("--maxcor", maxcor),
                          ("--max-pixels", max_pixels)):
        if value < 1:
            raise fail(PROG, f"{option} must be >= 1, got {value}", USAGE_ERROR)
    if save_every < 0:
        raise fail(PROG, f"--save-every must be >= 0, got {save_every}", USAGE_ERROR)
    for option, value in (("--content-weight", content_weight), ("--style-weight", style_weight),
                          ("--tv-weight", tv_weight)):
        _weight(option, value)
    if not math.isfinite(style_scale) or style_scale <= 0:
        raise fail(PROG, f"--style-scale must be a finite number > 0, got {style_scale}", USAGE_ERROR)
    if device not in ("auto", "cpu", "cuda"):
        raise fail(PROG, f"unknown --device {device!r}; choose one of: auto, cpu, cuda", USAGE_ERROR)
    blend = _floats("--style-blend", style_blend)
    n_styles = len(images) - 1
    if blend is not None and len(blend) != n_styles:
        raise fail(PROG, f"--style-blend has {len(blend)} weights for {n_styles} style image(s)", USAGE_ERROR)
    if blend is not None and sum(blend) <= 0:
        raise fail(PROG, "--style-blend weights must not all be zero", USAGE_ERROR)
    layer_weights = _floats("--style-layer-weights", style_layer_weights)
    chosen_styles = split_names(style_layers)

    from ..engine import NSTError, load_image, load_model, save_image, stylize
    from ..engine.images import check_output_path, fit_long_side, resize
    from ..engine.memory import available_bytes, estimate_bytes, largest_fitting_long_side

    try:
        check_output_path(out)
    except NSTError as e:
        raise fail(PROG, str(e), USAGE_ERROR) from None
    init_is_path = init not in ("content", "noise") and not init.startswith("mix:")
    if init_is_path and not Path(init).exists():
        raise fail(PROG, f"--init {init!r} is neither content, noise, mix:R nor an existing image file", USAGE_ERROR)
    if init.startswith("mix:"):
        try:
            mix_ratio(init)
        except ValueError as e:
            raise fail(PROG, f"--{e}", USAGE_ERROR) from None
    _writable_dir(out)
    if log_json is not None:
        _writable_dir(log_json)

    # --- model and images (exit 1) ---
    t_setup = time.perf_counter()
    try:
        nst_model = load_model(model, device, low_memory=low_memory)
        m = nst_model.manifest
        for layer in [content_layer or m["default_content_layer"], *(chosen_styles or m["default_style_layers"])]:
            if layer not in m["taps"]:
                raise fail(PROG, f"layer {layer!r} is not exported by {model}; its layers are {', '.join(m['taps'])} "
                                 f"(choose one of them, or re-export with nst-export --extra-layers {layer})", FAILURE)
        n_style_layers = len(chosen_styles or m["default_style_layers"])
        if layer_weights is not None and len(layer_weights) != n_style_layers:
            raise fail(PROG, f"--style-layer-weights has {len(layer_weights)} values for {n_style_layers} style layers",
                       USAGE_ERROR)
        content = load_image(images[0], max_pixels)
        styles = [load_image(p, max_pixels) for p in images[1:]]
        init_value = load_image(init, max_pixels) if init_is_path else init
    except NSTError as e:
        raise fail(PROG, str(e)) from None
    h, w = fit_long_side(*content.shape[:2], size)
    min_side = m.get("min_size", 16)
    deepest = m["layers"][-1]
    if min(h, w) < min_side:
        need_size = math.ceil(min_side * max(content.shape[:2]) / min(content.shape[:2]))
        while need_size > 1 and min(fit_long_side(*content.shape[:2], need_size - 1)) >= min_side:
            need_size -= 1  # the smallest --size whose rounded short side is enough
        raise fail(PROG, f"working size {w}x{h} px is too small for layer {deepest} of this model (it needs >= "
                         f"{min_side} px on the short side); use --size {need_size} or more")
    for path, style in zip(images[1:], styles):
        sh, sw = fit_long_side(*style.shape[:2], max(1, round(max(h, w) * style_scale)))
        if min(sh, sw) < min_side:
            raise fail(PROG, f"style image {path} becomes {sw}x{sh} px at this --size and --style-scale, too small "
                             f"for layer {deepest} (>= {min_side} px on the short side); raise --style-scale or "
                             "--size, or crop the style image to a less elongated shape")
    weights_bytes = (model / m["graphs"]["weights"]["file"]).stat().st_size
    need, have = estimate_bytes(m, h, w, maxcor, weights_bytes, low_memory), available_bytes()
    if have is not None and need > have and nst_model.provider == "CPUExecutionProvider":
        ch, cw = content.shape[:2]
        fits = largest_fitting_long_side(m, min(ch, cw) / max(ch, cw), maxcor, have, weights_bytes, low_memory)
        while fits >= 16 and estimate_bytes(m, *fit_long_side(ch, cw, fits), maxcor, weights_bytes, low_memory) > have:
            fits -= 16  # the exact check, with the rounding the run itself uses
        fits_h, fits_w = fit_long_side(ch, cw, max(fits, 1))
        if fits >= 16 and min(fits_h, fits_w) >= min_side:
            hint = f"try --size {fits}"
            if not low_memory and estimate_bytes(m, h, w, maxcor, weights_bytes, True) <= have:
                hint += " or --low-memory (slower, fits this size)"
        else:
            hint = "no working size fits; free some memory or run on a machine with more"
        raise fail(PROG, f"{w}x{h} px needs about {need / 2**30:.1f} GiB but {have / 2**30:.1f} GiB is available; "
                         f"{hint}")
    content = resize(content, (h, w))

    # --- the run ---
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = None if quiet else Progress(
        TextColumn("[bold]stylizing"), BarColumn(), MofNCompleteColumn(),
        TextColumn("J {task.fields[loss]:.4g}  aJc {task.fields[content]:.3g}  bJs {task.fields[style]:.3g}"),
        TextColumn("{task.fields[rate]:.2f} it/s"), TimeRemainingColumn(), transient=False, console=None)
    task = bar.add_task("run", total=iterations, loss=math.nan, content=math.nan, style=math.nan,
                        rate=0.0) if bar else None

    def on_progress(p) -> None:
        if bar is not None:
            bar.update(task, completed=p.iteration, loss=p.loss, content=p.content, style=p.style,
                       rate=p.iteration / max(p.elapsed, 1e-9))
        if save_every and p.iteration % save_every == 0 and p.iteration < iterations:
            save_image(p.image(), frame_path(out, p.iteration))

    from ..engine import NonFiniteError

    error, result = None, None
    try:
        if bar is not None:
            bar.start()
        result = stylize(nst_model, content, styles, iterations=iterations, content_weight=content_weight,
                         style_weight=style_weight, content_layer=content_layer, style_layers=chosen_styles,
                         style_layer_weights=layer_weights, style_blend=blend, style_scale=style_scale,
                         tv_weight=tv_weight, init=init_value, seed=seed, maxcor=maxcor, callback=on_progress)
    except (NonFiniteError, ValueError, OSError) as e:
        error = e
    finally:
        if bar is not None:
            bar.stop()
    setup_seconds = time.perf_counter() - t_setup

    def write_log(run_facts: dict) -> None:
        if log_json is None:
            return
        _atomic_json(_finite_or_none({
            **run_facts, "setup_seconds": setup_seconds - run_facts.get("seconds", 0.0),
            "provider": nst_model.provider, "size": [h, w],
            "options": {"content": str(images[0]), "styles": [str(p) for p in images[1:]], "size": size,
                        "iterations": iterations, "content_weight": content_weight if content_weight is not None
                        else m["defaults"]["content_weight"],
                        "style_weight": style_weight if style_weight is not None else m["defaults"]["style_weight"],
                        "style_layer_weights": layer_weights, "content_layer": content_layer
                        or m["default_content_layer"], "style_layers": chosen_styles or m["default_style_layers"],
                        "style_blend": blend, "style_scale": style_scale, "tv_weight": tv_weight, "init": init,
                        "seed": seed, "device": device, "maxcor": maxcor, "low_memory": low_memory},
            "model": {"id": m.get("id"), "path": str(model), "arch": m.get("arch"),
                      "weights": m.get("weights", {}).get("source")},
        }), log_json)

    if isinstance(error, NonFiniteError):
        # Keep what was reached: the best finite image (never NaN pixels) and the history up to the failure.
        try:
            if error.image is not None:
                save_image(error.image, out)
            write_log({"history": error.history, "iterations": len(error.history), "error": str(error),
                       "interrupted": False})
        except OSError as e:
            raise fail(PROG, f"{error}; and writing {out} failed too ({e.strerror or e})") from None
        if error.image is not None:
            raise fail(PROG, f"{error}; the best finite image so far was written to {out}")
        raise fail(PROG, f"{error}; nothing was written")
    if isinstance(error, ValueError):
        raise fail(PROG, str(error), USAGE_ERROR)
    if isinstance(error, OSError):  # an intermediate frame could not be written
        raise fail(PROG, f"cannot write an intermediate image beside {out} ({error.strerror or error}); "
                         "check the free space and permissions, or drop --save-every")

    if result.interrupted and not math.isfinite(result.loss):
        raise fail(PROG, "interrupted before the first evaluation finished; nothing was written", INTERRUPTED)
    for target, write in ((out, lambda: save_image(result.image, out)),
                          (log_json, lambda: write_log({
                              "history": result.history, "evaluations": result.evaluations,
                              "iterations": result.iterations, "loss": result.loss, "terms": result.terms,
                              "seconds": result.seconds, "message": result.message,
                              "interrupted": result.interrupted}))):
        try:
            write()
        except OSError as e:
            raise fail(PROG, f"cannot write {target} ({e.strerror or e}); check the free space and permissions") \
                from None
    if result.interrupted:
        say(PROG, f"interrupted after {result.iterations} iterations; the best image so far was written to {out}")
        raise typer.Exit(INTERRUPTED)
    if not quiet:
        note = "" if result.success else f" ({result.message})"
        typer.echo(f"J={result.loss:.5g} (content {result.terms['content']:.4g}, style {result.terms['style']:.4g}, "
                   f"tv {result.terms['tv']:.3g}) after {result.iterations} iterations, {result.evaluations} "
                   f"evaluations, {result.seconds:.1f} s on {result.provider} -> {out}{note}")


def main() -> None:
    app(prog_name=PROG)
