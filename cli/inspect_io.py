"""What nst-inspect's subcommands share: checking outputs before long work, loading the model and images, parsing
number lists, writing pictures and JSON; every failure leaves through `fail` as one line with nst-run's exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..engine.errors import NSTError
from ..engine.manifest import DEFAULT_MODEL_DIR
from ..engine.options import Device, OptionError, StylizeOptions
from .common import USAGE_ERROR, ModelDir, fail, split_names
from .options_cli import option_error
from .outputs import check_writable

PROG = "nst-inspect"
DEFAULT_MODEL = DEFAULT_MODEL_DIR
EXIT_CODES = (
    "Exit codes: 0 done, 1 failed (one 'nst-inspect: error:' line on stderr; nothing is written), 2 bad "
    "command line, 130 Ctrl-C."
)
Model = ModelDir
DeviceOpt = Annotated[Device, typer.Option(help=StylizeOptions.help("device"))]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")]
Seed = Annotated[int, typer.Option(help="Seed of the random units (units) or of the white noise (the others).")]
Cell = Annotated[int, typer.Option(min=16, help="Width in px of each picture in the figure.")]
Iterations = Annotated[int, typer.Option(min=1, help="L-BFGS iterations of each run in the figure.")]
DEVICE = StylizeOptions.default("device")


def out_option(default: str) -> object:
    return typer.Option(
        "--out", "-o", help=f"Picture to write (.png .jpg ...) [default: {default}].", show_default=False
    )


def check_outputs(picture: Path, *others: Path | None) -> None:
    """Before any long work: the picture's extension is one we write (else exit 2) and every output's folder is
    writable (else exit 1)."""
    from ..engine.images import check_output_path

    try:
        check_output_path(picture)
    except NSTError as e:
        raise fail(PROG, str(e), USAGE_ERROR) from None
    for path in (picture, *others):
        problem = path is not None and check_writable(path)
        if problem:
            raise fail(PROG, problem)


def numbers(option: str, values: list[str] | None, integer: bool = False) -> list[Any] | None:
    """'1e-4,1e-3' or repeated options -> numbers >= 0; exit 2 on anything else."""
    names = split_names(values)
    if names is None:
        return None
    try:
        out = [int(v) if integer else float(v) for v in names]
    except ValueError:
        raise fail(
            PROG, f"{option} takes {'whole ' if integer else ''}numbers, got {' '.join(names)!r}", USAGE_ERROR
        ) from None
    if any(not (v >= 0 and v != float("inf")) for v in out):
        raise fail(PROG, f"{option} values must be finite and >= 0, got {' '.join(names)}", USAGE_ERROR)
    return out


def load(model_dir: Path, device: str, images: list[Path]) -> tuple[Any, list[Any]]:
    """The model and the images, or exit 1 naming what is wrong."""
    from ..engine import load_image, load_model

    try:
        return load_model(model_dir, device), [load_image(p) for p in images]
    except NSTError as e:
        raise fail(PROG, str(e)) from None


def engine_errors(e: Exception) -> Any:
    """The typer.Exit for an engine error raised by a view: bad option values exit 2, the rest 1."""
    if isinstance(e, OptionError):
        return option_error(PROG, e)
    if isinstance(e, NSTError):
        return fail(PROG, str(e))
    return fail(PROG, str(e), USAGE_ERROR)  # ValueError: a value on the command line (a unit id, a count)


def write_picture(image: Any, path: Path) -> None:
    from ..views.grid import save_picture

    try:
        save_picture(image, path)
    except OSError as e:
        raise fail(PROG, f"cannot write {path} ({e.strerror or e}); check the free space and permissions") from None


def write_json(data: dict, path: Path) -> None:
    from ..engine.files import atomic_json

    try:
        atomic_json(data, path)
    except OSError as e:
        raise fail(PROG, f"cannot write {path} ({e.strerror or e}); check the free space and permissions") from None
