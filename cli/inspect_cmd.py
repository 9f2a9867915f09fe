"""nst-inspect: what the network sees. Subcommands units (top-9 patches per unit, optionally with d(unit)/d(image)),
reconstruct (content and style reconstructions from white noise, layer by layer) and sweep (a grid over alpha and
beta). Thin: the views are in nst.views; this file parses, loads, runs and writes. No torch on this path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..engine.errors import NSTError
from ..engine.options import StylizeOptions, init_is_image
from ..views import image_set as image_set_defaults
from ..views import reconstruct as rec_defaults
from ..views import sweep as sweep_defaults
from ..views import units as unit_defaults
from ..views import units_figure as figure_defaults
from . import inspect_io as shared
from .common import USAGE_ERROR, fail, guard, one_line_group
from .progress import terms_text
from .view_progress import CountBar, RunBars

app = typer.Typer(
    cls=one_line_group(shared.PROG),
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="What the network sees: top patches per unit with receptive fields, per-layer "
    "reconstructions and alpha/beta sweep grids, on a model written by nst-export.",
)


@app.command(
    help="For each chosen unit of --layer, the 9 image patches that activate it most over an image set, each "
    "cropped to the unit's receptive field (grey where it extends past the image), at most 2 per "
    "source image; one grid (a row per unit, captions: activation) and a JSON of image, position, "
    "activation and crop box.",
    epilog=shared.EXIT_CODES,
)
@guard(shared.PROG)
def units(
    layer: Annotated[
        str, typer.Option(help="Layer whose units to show, e.g. relu3_1 (one of the model's taps).", show_default=False)
    ],
    out: Annotated[Path, shared.out_option("units.png")] = Path("units.png"),
    count: Annotated[
        int, typer.Option("--units", min=1, help="How many random units (seeded by --seed).")
    ] = unit_defaults.DEFAULT_UNITS,
    unit_ids: Annotated[Optional[list[str]], typer.Option(help="These units instead, e.g. 3,17,40.")] = None,
    images: Annotated[
        Optional[list[Path]],
        typer.Option(
            help="A folder of images to add to the search (repeatable); files that are not images are skipped and "
            "counted."
        ),
    ] = None,
    no_default_images: Annotated[
        bool, typer.Option("--no-default-images", help="Search only the --images folders, not scikit-image's photos.")
    ] = False,
    gradient: Annotated[
        bool,
        typer.Option(
            "--gradient",
            help="Show d(unit)/d(image) on each patch (one-hot upstream gradient through the gradient "
            "graph): pixels that do not move the unit fade to grey.",
        ),
    ] = False,
    size: Annotated[
        int,
        typer.Option(
            min=16,
            help="Long side in px every image is resized to (searched at this and half this, as is and mirrored).",
        ),
    ] = image_set_defaults.DEFAULT_SIZE,
    seed: shared.Seed = 0,
    tile: Annotated[
        int, typer.Option(min=8, help="Side in px of each patch in the grid.")
    ] = figure_defaults.DEFAULT_TILE,
    json_out: Annotated[
        Optional[Path],
        typer.Option("--json", help="Where to write the JSON [default: OUT with .json].", show_default=False),
    ] = None,
    model: shared.Model = shared.DEFAULT_MODEL,
    device: shared.DeviceOpt = shared.DEVICE,
    quiet: shared.Quiet = False,
) -> None:
    from ..engine.manifest import require_taps
    from ..views.image_set import load_image_set
    from ..views.units import choose_units, patch_pixels, search
    from ..views.units_figure import render_units, units_record

    json_path = json_out or out.with_suffix(".json")
    shared.check_outputs(out, json_path)
    ids = shared.numbers("--unit-ids", unit_ids, integer=True)
    nst_model, _ = shared.load(model, device, [])
    try:
        require_taps(nst_model.manifest, [layer], str(model))
        chosen = choose_units(nst_model.manifest.layer(layer).channels, count, ids, seed)
        image_set = load_image_set(images or [], default_images=not no_default_images, size=size)
    except (ValueError, NSTError) as e:
        raise shared.engine_errors(e) from None
    if not quiet:
        typer.echo(image_set.describe())
    with CountBar(f"searching {layer}", quiet) as bar:
        result = search(nst_model, layer, image_set, chosen, on_image=bar.update)
    with CountBar("gradients", quiet or not gradient) as bar:
        pixels = patch_pixels(image_set, result, nst_model if gradient else None, bar.update)
    shared.write_picture(render_units(result, pixels, tile), out)
    shared.write_json(units_record(result, image_set), json_path)
    if not quiet:
        typer.echo(
            f"{layer}: {len(chosen)} units x {unit_defaults.PATCHES} patches over {result.variants} images "
            f"(receptive field {result.field.size} px, stride {result.field.stride}) -> {out}, {json_path}"
        )


@app.command(
    help="Content reconstructions from white noise with only the content loss at each layer, and style "
    "reconstructions with only the style loss over growing layer sets ({relu1_1}, {relu1_1, relu2_1}, "
    "...), as one labelled strip (Gatys et al., Fig. 1).",
    epilog=shared.EXIT_CODES,
)
@guard(shared.PROG)
def reconstruct(
    content: Annotated[Path, typer.Argument(help="Content image.", show_default=False)],
    style: Annotated[Path, typer.Argument(help="Style image.", show_default=False)],
    out: Annotated[Path, shared.out_option("reconstruct.png")] = Path("reconstruct.png"),
    content_layers: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Layers for content reconstructions [default: conv1_1..conv5_1 if the model exports them, else "
            "relu1_1..relu5_1]."
        ),
    ] = None,
    style_layers: Annotated[
        Optional[list[str]], typer.Option(help="Style layers, taken cumulatively [default: relu1_1..relu5_1].")
    ] = None,
    size: Annotated[int, typer.Option(min=16, help="Working long side in px.")] = rec_defaults.DEFAULT_SIZE,
    iterations: shared.Iterations = rec_defaults.DEFAULT_ITERATIONS,
    seed: shared.Seed = 0,
    cell: shared.Cell = rec_defaults.DEFAULT_CELL,
    model: shared.Model = shared.DEFAULT_MODEL,
    device: shared.DeviceOpt = shared.DEVICE,
    quiet: shared.Quiet = False,
) -> None:
    from ..views.reconstruct import RELU_LAYERS, default_content_layers, render_strip
    from ..views.reconstruct import reconstruct as run_reconstruct
    from .common import split_names

    shared.check_outputs(out)
    nst_model, (content_image, style_image) = shared.load(model, device, [content, style])
    c_layers = split_names(content_layers) or list(default_content_layers(nst_model.manifest))
    s_layers = split_names(style_layers) or list(RELU_LAYERS)
    try:
        with RunBars(quiet) as bars:
            runs = run_reconstruct(
                nst_model,
                content_image,
                style_image,
                c_layers,
                s_layers,
                size=size,
                iterations=iterations,
                seed=seed,
                callback=bars,
            )
    except (ValueError, NSTError) as e:
        raise shared.engine_errors(e) from None
    shared.write_picture(render_strip(content_image, style_image, runs, cell), out)
    if not quiet:
        for r in runs:
            extra = f", rel L2 to the content {r.rel_l2:.3f}" if r.kind == "content" else ""
            typer.echo(f"{r.kind} {r.label}: J {r.loss:.4g} after {r.iterations} iterations{extra}")
        typer.echo(f"-> {out}")


@app.command(
    help="A labelled grid of nst-run outputs over content weights alpha (rows) and style weights beta "
    "(columns): more alpha keeps more content, more beta more style. The style Grams are computed once "
    "for all cells.",
    epilog=shared.EXIT_CODES,
)
@guard(shared.PROG)
def sweep(
    images: Annotated[list[Path], typer.Argument(help="CONTENT STYLE [STYLE ...]", show_default=False)],
    out: Annotated[Path, shared.out_option("sweep.png")] = Path("sweep.png"),
    style_weights: Annotated[
        Optional[list[str]],
        typer.Option(
            help="beta values, e.g. 2e4,2e5,2e6,2e7 [default: "
            f"{', '.join(f'{b:g}' for b in sweep_defaults.DEFAULT_STYLE_FACTORS)} x the model's recommended beta]."
        ),
    ] = None,
    content_weights: Annotated[
        Optional[list[str]], typer.Option(help="alpha values [default: the model's recommended alpha].")
    ] = None,
    size: Annotated[
        int, typer.Option(min=16, help="Working long side in px of every cell.")
    ] = sweep_defaults.DEFAULT_SIZE,
    iterations: shared.Iterations = sweep_defaults.DEFAULT_ITERATIONS,
    init: Annotated[str, typer.Option(help="content, noise or mix:R (as nst-run).")] = StylizeOptions.default("init"),
    seed: shared.Seed = 0,
    cell: shared.Cell = sweep_defaults.DEFAULT_CELL,
    model: shared.Model = shared.DEFAULT_MODEL,
    device: shared.DeviceOpt = shared.DEVICE,
    quiet: shared.Quiet = False,
) -> None:
    from ..views.sweep import DEFAULT_STYLE_FACTORS, render_sweep
    from ..views.sweep import sweep as run_sweep

    if len(images) < 2:
        raise fail(
            shared.PROG,
            "give a content image and at least one style image: nst-inspect sweep CONTENT STYLE [STYLE ...]",
            USAGE_ERROR,
        )
    if init_is_image(init):
        raise fail(shared.PROG, f"--init {init!r}: sweep starts from content, noise or mix:R", USAGE_ERROR)
    betas = shared.numbers("--style-weights", style_weights)
    alphas = shared.numbers("--content-weights", content_weights)
    shared.check_outputs(out)
    nst_model, loaded = shared.load(model, device, images)
    alphas = alphas or [nst_model.manifest.content_weight]
    betas = betas or [f * nst_model.manifest.style_weight for f in DEFAULT_STYLE_FACTORS]
    try:
        with RunBars(quiet) as bars:
            grid = run_sweep(
                nst_model,
                loaded[0],
                loaded[1:],
                alphas,
                betas,
                callback=bars,
                size=size,
                iterations=iterations,
                init=init,
                seed=seed,
                device=device,
            )
    except (ValueError, NSTError) as e:
        raise shared.engine_errors(e) from None
    shared.write_picture(render_sweep(grid, loaded[0], loaded[1:], cell), out)
    if not quiet:
        for row in grid:
            for c in row:
                typer.echo(
                    f"alpha {c.content_weight:g}, beta {c.style_weight:g}: J {c.loss:.4g} "
                    f"({terms_text(c.terms)}) in {c.seconds:.1f} s"
                )
        typer.echo(f"-> {out}")


def main() -> None:
    app(prog_name=shared.PROG)
