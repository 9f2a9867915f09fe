"""What both commands share: one-line errors on stderr with the right exit code. No torch, no onnxruntime here.

Every failure ends with exactly one line `PROG: error: ...` on stderr and exit code 1 (2 when the command line itself
is wrong, 130 after Ctrl-C); no traceback. `OneLineCommand` does this for click's own parsing errors (unknown option,
bad integer, missing argument), `guard` for what escapes a command's body (Ctrl-C outside the optimisation, running
out of memory, an unexpected bug: set NST_DEBUG=1 to see its traceback)."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # newer typer vendors click
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - typer on click
    from click.exceptions import ClickException as _ClickException  # type: ignore[assignment]
_Abort = typer.Abort

# Options every command that reads a model and images shares (defaults from the engine, written once there).
ModelDir = Annotated[Path, typer.Option("--model", help="Model directory written by nst-export.")]
MaxPixels = Annotated[int, typer.Option(min=1, help="Refuse input images with more pixels (decompression-bomb guard).")]

USAGE_ERROR = 2  # like click: the command line itself is wrong
FAILURE = 1
INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


_reported = [False]  # whether this invocation has printed its final line (see OneLineCommand)


def say(prog: str, message: str) -> None:
    """Print `prog: message` as one line on stderr (the invocation's final word: an error or an interruption)."""
    one_line = " ".join(str(message).split())
    print(f"{prog}: {one_line}", file=sys.stderr, flush=True)
    _reported[0] = True


def fail(prog: str, message: str, code: int = FAILURE) -> typer.Exit:
    """Print `prog: error: message` as one line on stderr; return the Exit to raise."""
    say(prog, f"error: {message}")
    return typer.Exit(code)


def split_names(values: list[str] | None) -> list[str] | None:
    """Layer lists may be given as repeated options, spaces or commas: 'relu1_1,relu2_1' or 'relu1_1 relu2_1'."""
    if not values:
        return None
    return [n for v in values for n in v.replace(",", " ").split()]


_NOT_ONE_OF = re.compile(
    r"Invalid value for '(?P<opt>[^']+)': (?:Value error, )?(?P<val>'[^']*') is not one of "
    r"(?P<choices>.+?)\.?$"
)


def click_message(e: Any) -> str:
    """click's message, with a Literal choice error in this project's words: "unknown --x 'v'; choose one of: a, b"."""
    message = " ".join(e.format_message().split())
    m = _NOT_ONE_OF.search(message)
    if m:
        choices = ", ".join(c.strip().strip("'") for c in m["choices"].split(","))
        return f"unknown {m['opt']} {m['val']}; choose one of: {choices}"
    return message


def _one_line_main(prog: str, call: Any, standalone_mode: bool) -> Any:
    """Run click's main (`call`, non-standalone) and turn whatever it raises into one line and an exit code."""
    _reported[0] = False
    try:
        rv = call()
        code = rv if isinstance(rv, int) else 0  # non-standalone: an Exit's code comes back as the value
    except _ClickException as e:
        fail(prog, f"{click_message(e)} (see {prog} --help)", e.exit_code)
        code = e.exit_code
    except _Abort:
        fail(prog, "aborted", FAILURE)
        code = FAILURE
    if code == INTERRUPTED and not _reported[0]:  # Ctrl-C while typer itself was busy (parsing)
        fail(prog, "interrupted; nothing was written", INTERRUPTED)
    if standalone_mode:
        sys.exit(code)
    return code


class _OneLineMain:
    """Mixin for typer's command and group classes: run click's main non-standalone inside _one_line_main."""

    prog: str

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def call() -> Any:
            return super(_OneLineMain, self).main(  # type: ignore[misc]
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )

        return _one_line_main(self.prog, call, standalone_mode)


def one_line_command(prog: str) -> type[TyperCommand]:
    """A command class whose command-line errors are one line (`prog: error: ...`, exit 2) instead of click's usage
    block. Use as `app.command(cls=one_line_command(PROG))`."""
    return type("OneLineCommand", (_OneLineMain, TyperCommand), {"prog": prog})


def one_line_group(prog: str) -> type[TyperGroup]:
    """The same for a command with subcommands (`typer.Typer(cls=one_line_group(PROG))`): errors in the group's or a
    subcommand's command line are one line, exit 2."""
    return type("OneLineGroup", (_OneLineMain, TyperGroup), {"prog": prog})


def guard(prog: str, interrupted: str = "interrupted; nothing was written"):
    """Decorate a command's function so that nothing escapes it as a traceback."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except (typer.Exit, _ClickException, _Abort):
                raise
            except KeyboardInterrupt:
                raise fail(prog, interrupted, INTERRUPTED) from None
            except MemoryError:
                raise fail(prog, "out of memory; try a smaller --size (or close other programs)") from None
            except Exception as e:
                if os.environ.get("NST_DEBUG"):
                    raise
                raise fail(
                    prog,
                    f"unexpected {type(e).__name__}: {e} (this is a bug; please report it; "
                    "NST_DEBUG=1 shows the traceback)",
                ) from None

        return wrapper

    return decorate
