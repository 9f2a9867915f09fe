"""StylizeOptions: every option of a run, with its default and its validation, written once.

The CLI builds nst-run's options and help from these fields (cli/run_cmd.py), the API takes the same names as keyword
arguments, and a run's JSON log records `asdict(options)`. Invalid values raise OptionError (a ValueError) naming the
option and the valid choices."""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, get_args

from .color import PreserveColors
from .model import Arena, Device

LayerWeighting = Literal["auto", "equal"]
Bounds = Literal["box", "clip"]
Optimizer = Literal["scipy", "lbfgs"]
MaskMethod = Literal["resize", "inside"]  # engine/regions.py METHODS
NO_MASK = "none"  # a style mask meaning: the whole picture
INIT_KEYWORDS = ("content", "noise")  # plus "mix:R" and an image path
LOW_MEMORY_MAXCOR = 5  # --low-memory's L-BFGS memory
DEFAULT_MIN_SIZE = 256  # the first stage's long side when --min-size is not given


def flag(name: str) -> str:
    """How the command line spells a field: style_weight -> --style-weight; a field may name its own spelling (a
    repeated option in the singular: style_masks -> --style-mask)."""
    f = StylizeOptions.__dataclass_fields__.get(name)
    if f is not None and "flag" in f.metadata:
        return str(f.metadata["flag"])
    return "--" + name.replace("_", "-")


def field_named(spelling: str) -> str | None:
    """The field a spelling names: the field's name, its flag with or without dashes ('style-mask', 'style_mask',
    '--style-mask'), or None."""
    key = spelling.strip().lstrip("-").replace("-", "_")
    for name in option_names():
        if key in (name, flag(name).lstrip("-").replace("-", "_")):
            return name
    return None


def is_path_list(name: str) -> bool:
    """Whether a field is a list of file paths, one per repeated option (never split at commas or spaces)."""
    return bool(StylizeOptions.__dataclass_fields__[name].metadata.get("paths"))


class OptionError(ValueError):
    """An option's value is invalid. `option` is the field name (the command line spells it flag(option))."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"{option} {problem}")
        self.option, self.problem = option, problem

    @property
    def line(self) -> str:
        """The problem as the command line says it: '--style-weight must be ...'."""
        return f"{flag(self.option)} {self.problem}"


def _opt(default: Any, help: str, **metadata: Any) -> Any:
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class StylizeOptions:
    size: int = _opt(512, "Working long side in px of the result (the content is resized to it).")
    iterations: int = _opt(
        120,
        "L-BFGS iterations of the first (coarsest) stage; each later stage runs fewer in proportion to its long side "
        "(half as many at twice the size). With one stage, the run's iterations.",
    )
    scales: int | None = _opt(
        None,
        "Stages of the coarse-to-fine schedule, from --min-size up to --size in equal ratios; 1 = single scale "
        "[default: as many as keep each step <= 2x].",
    )
    min_size: int | None = _opt(None, "Long side of the first stage [default: 256, or --size if smaller].")
    content_weight: float | None = _opt(None, "alpha [default: from the model's manifest].")
    style_weight: float | None = _opt(None, "beta [default: from the model's manifest].")
    content_layer: str | None = _opt(None, "Content layer [default: the model's].")
    style_layers: tuple[str, ...] | None = _opt(
        None, "Style layers, comma- or space-separated, a subset of the model's taps [default: the model's]."
    )
    style_layer_weights: LayerWeighting | tuple[float, ...] = _opt(
        "auto",
        "lambda per style layer: auto (each layer's term relative to its style target, so every layer is matched), "
        "equal, or numbers such as '1,1,1,1,1' (normalised to sum 1).",
    )
    style_blend: tuple[float, ...] | None = _opt(None, "Weight per style image, e.g. '0.7,0.3' [default: equal].")
    style_masks: tuple[str, ...] | None = _opt(
        None,
        "Region of the output for each style, once per style image in their order: an image in the content's frame "
        "(grey levels: 1 = this style, 0 = not; soft edges blend) or none (the whole picture). Pixels no mask covers "
        "stay close to the photo. With masks, --style-blend scales each style's term.",
        flag="--style-mask",
        paths=True,
    )
    style_source_masks: tuple[str, ...] | None = _opt(
        None,
        "Part of each style image to take the style from, once per style image: an image in that style image's frame "
        "(grey levels) or none (all of it).",
        flag="--style-source-mask",
        paths=True,
    )
    mask_method: MaskMethod = _opt(
        "resize",
        "How a mask reaches each layer: resize (the mask's mean over each unit's pixels; soft, the style reaches a "
        "little past the border) or inside (only units that see nothing outside the mask; deep layers lose a band "
        "along the border, and small regions may have no deep units).",
    )
    style_scale: float = _opt(1.0, "Style images' long side = content's x this.")
    tv_weight: float = _opt(0.0, "tau: squared total-variation weight (smoothness).")
    preserve_colors: PreserveColors = _opt(
        "none",
        "none; luminance (stylize the luminance only, keep the content's colours); histogram (give the style "
        "images the content's colour mean and covariance first).",
    )
    init: str = _opt("content", "content, noise, mix:R (R noise + (1-R) content, R in [0,1]), or an image path.")
    seed: int = _opt(0, "Seed for noise inits.")
    maxcor: int = _opt(
        20, "L-BFGS memory (correction pairs); each costs 2 x 4 bytes per pixel-channel (2 x 8 with --optimizer scipy)."
    )
    bounds: Bounds = _opt(
        "box",
        "box: L-BFGS-B keeps every pixel in [0, 1]; clip: unbounded L-BFGS on the image clipped to [0, 1] "
        "(cheaper optimiser steps).",
    )
    optimizer: Optimizer = _opt(
        "lbfgs",
        "lbfgs: this project's L-BFGS on the array API (float32, strong-Wolfe line search; with --bounds box each "
        "iterate is projected onto [0, 1]); scipy: scipy's L-BFGS-B (float64, exact box constraints), 9-12% slower "
        "per default run at the same per-layer figures.",
    )
    device: Device = _opt("auto", "auto (CUDA if onnxruntime offers it), cpu or cuda.")
    low_memory: bool = _opt(
        False,
        f"L-BFGS keeps {LOW_MEMORY_MAXCOR} correction pairs instead of --maxcor: 0.36 kB less per pixel "
        "from 20 (about 0.4 GB at 1024 px square; twice that with --optimizer scipy); convergence per iteration may "
        "be slower. On CPU onnxruntime also runs without its arena: about 10% less peak memory at 1024 px, about "
        "12% slower.",
    )

    def __post_init__(self) -> None:
        for name in ("size", "iterations", "maxcor", "scales", "min_size"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.min_size is not None and self.min_size > self.size:
            raise OptionError("min_size", f"({self.min_size}) must not be larger than --size ({self.size})")
        if isinstance(self.style_layer_weights, str) and self.style_layer_weights not in get_args(LayerWeighting):
            raise OptionError(
                "style_layer_weights",
                f"{self.style_layer_weights!r} is unknown; choose one of: "
                f"{', '.join(get_args(LayerWeighting))}, or numbers",
            )
        for name, choices in (("bounds", Bounds), ("optimizer", Optimizer), ("mask_method", MaskMethod)):
            if getattr(self, name) not in get_args(choices):
                raise OptionError(
                    name, f"{getattr(self, name)!r} is unknown; choose one of: {', '.join(get_args(choices))}"
                )
        for name in ("style_masks", "style_source_masks"):
            values = getattr(self, name)
            if values is not None and (isinstance(values, str) or not all(isinstance(v, str) and v for v in values)):
                raise OptionError(name, f"takes a file path or {NO_MASK} per style image, got {values!r}")
        if self.preserve_colors not in get_args(PreserveColors):
            raise OptionError(
                "preserve_colors",
                f"{self.preserve_colors!r} is unknown; choose one of: {', '.join(get_args(PreserveColors))}",
            )
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if value is not None:
                _finite(name, value)
        _finite("style_scale", self.style_scale, allow_zero=False)
        for name in ("style_layer_weights", "style_blend"):
            values = getattr(self, name)
            if values is not None and not isinstance(values, str):
                for v in values:
                    _finite(name, v)
                if sum(values) <= 0:
                    raise OptionError(name, "values must not all be zero")
        if self.device not in get_args(Device):
            raise OptionError("device", f"{self.device!r} is unknown; choose one of: {', '.join(get_args(Device))}")
        if self.init.startswith("mix:"):
            mix_ratio(self.init)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise OptionError("seed", f"must be an integer, got {self.seed!r}")

    @classmethod
    def help(cls, name: str) -> str:
        return str(cls.__dataclass_fields__[name].metadata["help"])

    @classmethod
    def default(cls, name: str) -> Any:
        f = cls.__dataclass_fields__[name]
        return None if f.default is MISSING else f.default

    @property
    def lbfgs_pairs(self) -> int:
        """The L-BFGS memory the run uses: --maxcor, capped by --low-memory."""
        return min(self.maxcor, LOW_MEMORY_MAXCOR) if self.low_memory else self.maxcor

    @property
    def arena(self) -> Arena:
        """Where onnxruntime's CPU tensors live (load_model's arena): no arena with --low-memory."""
        return "off" if self.low_memory else "shared"

    @property
    def first_size(self) -> int:
        """The first stage's long side: --min-size, or 256 (DEFAULT_MIN_SIZE), or --size if that is smaller."""
        return self.min_size if self.min_size is not None else min(DEFAULT_MIN_SIZE, self.size)


def option_names() -> list[str]:
    return [f.name for f in fields(StylizeOptions)]


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(name, f"must be >= 1, got {value!r}")


def _finite(name: str, value: Any, allow_zero: bool = True) -> None:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise OptionError(name, f"must be a finite number {'>= 0' if allow_zero else '> 0'}, got {v}")


def mix_ratio(init: str) -> float:
    """R of an init 'mix:R'; OptionError unless R is a number in [0, 1]."""
    try:
        r = float(init[4:])
    except ValueError:
        r = math.nan
    if not 0.0 <= r <= 1.0:
        raise OptionError("init", f"{init!r}: the ratio after 'mix:' must be a number in [0, 1]")
    return r


def init_is_image(init: str) -> bool:
    """Whether `init` names an image (anything but the keywords and mix:R)."""
    return init not in INIT_KEYWORDS and not init.startswith("mix:")
