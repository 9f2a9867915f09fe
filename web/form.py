"""The options the page offers, with defaults and help from StylizeOptions (written once there), and the form's
strings -> StylizeOptions. Everything else stays at StylizeOptions' defaults."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from ..engine.options import INIT_KEYWORDS, OptionError, StylizeOptions, init_is_image

FIELDS = ("size", "iterations", "style_weight", "preserve_colors", "style_scale", "init")
STYLE_WEIGHT_RANGE = (0.01, 100.0)  # the slider: this range x the model's beta, on a log scale
_HINTS = typing.get_type_hints(StylizeOptions)


def _choices(name: str) -> list[str]:
    return [w for a in (_HINTS[name], *get_args(_HINTS[name])) if get_origin(a) is Literal for w in get_args(a)]


def page_options(beta: float) -> dict[str, dict[str, Any]]:
    """Per field: default, help and (for words) choices, as the page builds its form; beta: the model's style
    weight, which the slider multiplies."""
    fields: dict[str, dict[str, Any]] = {}
    for name in FIELDS:
        entry: dict[str, Any] = {"default": StylizeOptions.default(name), "help": StylizeOptions.help(name)}
        if _choices(name):
            entry["choices"] = _choices(name)
        fields[name] = entry
    fields["style_weight"].update(default=beta, range=[beta * STYLE_WEIGHT_RANGE[0], beta * STYLE_WEIGHT_RANGE[1]])
    fields["init"]["choices"] = [*INIT_KEYWORDS, "mix:0.5"]
    return fields


def parse_options(form: Mapping[str, Any]) -> StylizeOptions:
    """The form's fields (strings; absent or empty: the default) -> StylizeOptions, or OptionError."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        text = str(form.get(name) or "").strip()
        if not text:
            continue
        kind = _HINTS[name]
        numeric = int if kind is int else float if float in (kind, *get_args(kind)) else None
        try:
            values[name] = numeric(text) if numeric is not None else text
        except ValueError:
            raise OptionError(name, f"must be a number, got {text!r}") from None
    if init_is_image(values.get("init", "content")):
        raise OptionError("init", f"takes {', '.join(INIT_KEYWORDS)} or mix:R here, got {values['init']!r}")
    return StylizeOptions(**values)


MASK_NAMES = {"style_masks": "mask", "style_source_masks": "source mask"}  # as the page labels them


def option_message(e: OptionError) -> str:
    return f"{MASK_NAMES.get(e.option, e.option.replace('_', ' '))} {e.problem}"
