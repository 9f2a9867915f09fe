"""nst-export: write a model directory (features graph, gradient graph, weights, manifest). Needs PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ..export.arch import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS
from ..export.exporter import DEFAULT_OUT
from .common import FAILURE, INTERRUPTED, USAGE_ERROR, fail, guard, one_line_command, split_names

PROG = "nst-export"
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@app.command(
    help="Export VGG features + gradient graphs to ONNX for nst-run.",
    epilog="The model directory is built in a temporary directory beside --out and renamed into place: a "
    "failed or interrupted export leaves nothing half-written. Exit codes: 0 done, 1 failed, 2 bad "
    "command line, 130 Ctrl-C.",
    cls=one_line_command(PROG),
)
@guard(PROG)
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")] = DEFAULT_OUT,
    arch: Annotated[Literal["vgg19", "vgg16"], typer.Option(help="Network.")] = "vgg19",
    content_layer: Annotated[
        str, typer.Option(help="Default content layer (also exported as a tap).")
    ] = DEFAULT_CONTENT_LAYER,
    style_layers: Annotated[
        Optional[list[str]],
        typer.Option(
            help=f"Default style layers, comma- or space-separated [default: {','.join(DEFAULT_STYLE_LAYERS)}]."
        ),
    ] = None,
    extra_layers: Annotated[
        Optional[list[str]], typer.Option(help="More layers to export as taps, so nst-run can choose them later.")
    ] = None,
    pooling: Annotated[Literal["max", "avg"], typer.Option(help="Gatys et al. suggest avg may look smoother.")] = "max",
    weights: Annotated[
        Literal["original", "torchvision", "random"],
        typer.Option(help="original (bundled Caffe VGG19, offline), torchvision (download), or random (tests)."),
    ] = "original",
    weights_file: Annotated[
        Optional[Path],
        typer.Option(help="Local weights: a state dict in torchvision's features.N layout (.pth) or a Keras .h5."),
    ] = None,
    preprocess: Annotated[
        Optional[Literal["caffe", "torchvision"]],
        typer.Option(help="Input convention the weights expect [default: per source]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for --weights random and for the validation image.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace an existing model directory.")] = False,
) -> None:
    try:
        import onnx  # noqa: F401 - the heavy dependencies, checked before any work
        import torch  # noqa: F401

        from ..export import ExportError, export_model
        from ..export.exporter import order_taps
    except ImportError as e:
        raise fail(PROG, f"{e.name or e} is not installed; nst-export needs: pip install 'nst[export]'") from None

    styles = split_names(style_layers) or list(DEFAULT_STYLE_LAYERS)
    extras = split_names(extra_layers) or []
    try:
        order_taps(arch, content_layer, [*styles, *extras])
    except ValueError as e:
        raise fail(PROG, str(e), USAGE_ERROR) from None
    try:
        report = export_model(
            out,
            arch=arch,
            content_layer=content_layer,
            style_layers=styles,
            extra_layers=extras,
            pooling=pooling,
            weights=weights,
            weights_file=weights_file,
            preprocess=preprocess,
            seed=seed,
            force=force,
        )
    except (ExportError, ValueError, OSError) as e:
        raise fail(PROG, str(e), FAILURE) from None
    except KeyboardInterrupt:
        raise fail(PROG, "interrupted; nothing was written", INTERRUPTED) from None
    m = report.manifest
    assert m is not None
    typer.echo(
        f"wrote {report.path}/ ({m.arch}, weights {m.weights_source}, preprocess {m.preprocess}, pooling {m.pooling})"
    )
    for name, size in report.files.items():
        typer.echo(f"  {name:<15} {_mb(size):>9}")
    typer.echo(f"  taps: {' '.join(m.taps)}")
    if report.validation is not None:
        v = report.validation
        typer.echo(
            f"  validated vs torch at {v.size[0]}x{v.size[1]}: features rel L2 <= "
            f"{max(v.features_rel_l2.values()):.2e}, gradient rel L2 {v.gradient_rel_l2:.2e}"
        )
    typer.echo(f"  took {report.seconds:.1f} s")


def main() -> None:
    app(prog_name=PROG)
