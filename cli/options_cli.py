"""nst-run's (and nst-batch's, nst-video's) stylize options, generated from the StylizeOptions dataclass: one typer
option per field, with the field's default and help. A new field appears on every command that uses the decorator; no
default or help text is written twice. dataclass_options does the same for any such dataclass (nst-video's
VideoOptions), and the decorators stack.

    @app.command()
    @stylize_options(PROG)
    def run(images: ..., *, options: StylizeOptions) -> None: ...
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, get_args, get_origin

import typer

from ..engine.options import OptionError, StylizeOptions, flag, is_path_list
from .common import USAGE_ERROR, fail, split_names


def _tuple_element(hint: Any) -> Any:
    """float for `tuple[float, ...] | None`, str for `tuple[str, ...] | None`, else None."""
    return next((get_args(a)[0] for a in get_args(hint) if get_origin(a) is tuple), None)


def _cli_type(hint: Any) -> Any:
    """The type typer parses for a field: lists arrive as strings ('0.7,0.3' or repeated options) and are split here."""
    if _tuple_element(hint) is not None:
        return Optional[list[str]]
    return hint


def _words(hint: Any) -> tuple[str, ...]:
    """The Literal words a field also accepts beside its numbers ('auto', 'equal' for style_layer_weights)."""
    return tuple(w for a in get_args(hint) if get_origin(a) is Literal for w in get_args(a))


def _parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    # a plain flag, not --x/--no-x; a field with its own spelling (--style-mask for style_masks)
    decls = [flag(f.name)] if hint is bool or "flag" in f.metadata else []
    listed = _tuple_element(hint) is not None  # parsed by _convert; its default is the field's, said in the help
    option = typer.Option(*decls, help=f.metadata["help"], show_default=f.default is not None and not listed)
    return inspect.Parameter(
        f.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None if listed else f.default,
        annotation=Annotated[_cli_type(hint), option],
    )


def _convert(prog: str, f: dataclasses.Field, hint: Any, value: Any) -> Any:
    """Command-line strings -> the field's tuple of names or numbers (or one of its words); exit 2 on a non-number."""
    element = _tuple_element(hint)
    if element is None:
        return value
    if is_path_list(f.name):  # one path per repeated option: a path may hold commas or spaces
        return tuple(value) if value else f.default
    names = split_names(value)
    if names is None:
        return f.default
    if len(names) == 1 and names[0] in _words(hint):
        return names[0]
    try:
        return tuple(element(v) for v in names)
    except ValueError:
        words = _words(hint)
        also = f" or one of: {', '.join(words)}" if words else ""
        raise fail(prog, f"{flag(f.name)} takes numbers{also}, got {' '.join(names)!r}", USAGE_ERROR) from None


def option_error(prog: str, e: OptionError) -> typer.Exit:
    """An OptionError names the field; on the command line it is --field-name (exit 2)."""
    return fail(prog, e.line, USAGE_ERROR)


def dataclass_options(cls: type, keyword: str, prog: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every field of the options dataclass `cls` as an option (its default and help from the field's
    metadata); it receives them as one instance in the `keyword` argument. An OptionError from the dataclass's
    validation is one line, exit 2."""
    fields = dataclasses.fields(cls)
    hints = typing.get_type_hints(cls)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func)
        annotations = typing.get_type_hints(func, include_extras=True)  # the command's own options, help included
        own = [p.replace(annotation=annotations[p.name]) for p in sig.parameters.values() if p.name != keyword]
        params = own + [_parameter(f, hints[f.name]) for f in fields]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {f.name: _convert(prog, f, hints[f.name], kwargs.pop(f.name)) for f in fields}
            try:
                options = cls(**values)
            except OptionError as e:
                raise option_error(prog, e) from None
            return func(*args, **{keyword: options}, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params, return_annotation=None)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def stylize_options(prog: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every StylizeOptions field as an option; it receives them as one `options` keyword."""
    return dataclass_options(StylizeOptions, "options", prog)
