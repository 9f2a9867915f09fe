"""nst-run --report PATH: check the path before the run, draw the report after it (nst.views.report, Pillow only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import USAGE_ERROR, fail
from .outputs import check_writable


def check_report(prog: str, path: Path | None) -> None:
    """Before the run: a picture extension (else exit 2) in a writable folder (else exit 1)."""
    if path is None:
        return
    from ..engine.errors import NSTError
    from ..engine.images import check_output_path

    try:
        check_output_path(path)
    except NSTError as e:
        raise fail(prog, f"--report: {e}", USAGE_ERROR) from None
    problem = check_writable(path)
    if problem:
        raise fail(prog, problem)


def report_title(images: list[Path], result: Any) -> str:
    plan = result.plan
    h, w = result.image.shape[:2]
    styles = " + ".join(p.name for p in images[1:])
    weights = f", alpha {plan.content_weight:g}, beta {plan.style_weight:g}" if plan is not None else ""
    return (
        f"{images[0].name} in the style of {styles}: {w}x{h} px, {result.iterations} iterations{weights}, "
        f"J {result.loss:.4g}, {result.seconds:.0f} s"
    )


def write_report(
    prog: str,
    path: Path | None,
    images: list[Path],
    content: Any,
    styles: list[Any],
    result: Any,
    masks: list[Any] | None = None,
) -> None:
    """After the image: the report picture (each style's mask beside it), written atomically; a failure is one line,
    exit 1."""
    if path is None:
        return
    from ..views.grid import save_picture
    from ..views.report import render_report

    picture = render_report(content, styles, result.image, result.history, report_title(images, result), masks=masks)
    try:
        save_picture(picture, path)
    except OSError as e:
        raise fail(prog, f"cannot write {path} ({e.strerror or e}); check the free space and permissions") from None
