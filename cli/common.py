"""What both commands share: one-line errors on stderr with the right exit code. No torch, no onnxruntime here."""
from __future__ import annotations

import sys

import typer

USAGE_ERROR = 2  # like click: the command line itself is wrong
FAILURE = 1


def fail(prog: str, message: str, code: int = FAILURE) -> typer.Exit:
    """Print `prog: error: message` as one line on stderr; return the Exit to raise."""
    one_line = " ".join(str(message).split())
    print(f"{prog}: error: {one_line}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def split_names(values: list[str] | None) -> list[str] | None:
    """Layer lists may be given as repeated options, spaces or commas: 'relu1_1,relu2_1' or 'relu1_1 relu2_1'."""
    if not values:
        return None
    return [n for v in values for n in v.replace(",", " ").split()]
