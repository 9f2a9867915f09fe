"""Run planning: what the user asked for (options, image shapes) -> what the engine will run (a Plan), or a typed
error saying why not and what would work. Pure: no images, no onnxruntime; stylize() and the CLI both call it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import memory
from .errors import MemoryEstimateError, SizeError
from .images import fit_long_side
from .manifest import Manifest, require_taps
from .options import OptionError, StylizeOptions
from .region_plan import Regions, plan_regions
from .weight_scale import weight_scale_warnings

HW = tuple[int, int]


@dataclass(frozen=True)
class Stage:
    index: int  # 1-based
    size: HW  # (h, w) of the content and the image being optimised
    style_sizes: tuple[HW, ...]  # (h, w) of each style image at this stage
    iterations: int


@dataclass(frozen=True)
class Plan:
    """Everything a run uses, resolved: stylize() reads its settings from here and nowhere else."""

    options: StylizeOptions  # as asked (the log records them beside the resolved values below)
    content_layer: str  # resolved against the model's defaults
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...] | None  # lambda_l summing to 1; None: "auto", derived per stage
    style_blend: tuple[float, ...]  # per style image, summing to 1
    content_weight: float  # alpha
    style_weight: float  # beta
    tv_weight: float  # tau
    init: str
    seed: int
    preserve_colors: str
    bounds: str
    optimizer: str
    lbfgs_pairs: int  # --maxcor, or fewer with --low-memory
    stages: tuple[Stage, ...]
    memory_bytes: int  # estimated peak (the largest stage)
    recommended_style_weight: float  # the model's beta for this layer weighting, at this plan's alpha
    warnings: tuple[str, ...] = ()  # said before the run; the run goes ahead
    regions: Regions | None = None  # style masks (one region term per style), or None: one blended style term

    @property
    def size(self) -> HW:
        return self.stages[-1].size

    def resolved(self) -> dict:
        """The resolved settings, as the JSON log records them."""
        return {
            "content_layer": self.content_layer,
            "style_layers": list(self.style_layers),
            "style_layer_weights": "auto" if self.style_layer_weights is None else list(self.style_layer_weights),
            "style_blend": list(self.style_blend),
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "tv_weight": self.tv_weight,
            "init": self.init,
            "seed": self.seed,
            "preserve_colors": self.preserve_colors,
            "bounds": self.bounds,
            "optimizer": self.optimizer,
            "lbfgs_pairs": self.lbfgs_pairs,
            "stages": [{"stage": s.index, "size": list(s.size), "iterations": s.iterations} for s in self.stages],
            "regions": None if self.regions is None else self.regions.resolved(),
        }


def schedule(content_hw: HW, options: StylizeOptions, min_side: int) -> list[tuple[HW, int]]:
    """The coarse-to-fine stages as ((h, w), iterations), coarsest first.

    Long sides grow geometrically from options.first_size to options.size (the last is exactly --size); without
    --scales, as few stages as keep each step <= 2x. A stage whose short side would be below min_side (the deepest
    layer's downsampling) starts larger instead. Iterations fall in proportion to the long side: the first stage runs
    options.iterations, a stage twice as large half as many (at least 1)."""
    final, first = options.size, max(options.first_size, smallest_size(content_hw, min_side))
    if options.scales is not None:
        n = options.scales
    else:
        n = 1 + max(0, math.ceil(math.log2(final / first) - 1e-9)) if first < final else 1
    if n == 1 or first >= final:
        return [(fit_long_side(*content_hw, final), options.iterations)]
    longs = [round(first * (final / first) ** (k / (n - 1))) for k in range(n)]
    longs = sorted(set(longs[:-1]) | {final})  # rounding can repeat a size on narrow schedules
    return [(fit_long_side(*content_hw, s), max(1, round(options.iterations * longs[0] / s))) for s in longs]


def _normalise(name: str, values: Sequence[float] | None, n: int, counted: str) -> tuple[float, ...]:
    """Equal weights by default; given ones must number n and are scaled to sum 1. counted: 'values for N things'."""
    if values is None:
        return (1.0 / n,) * n
    if len(values) != n:
        raise OptionError(name, f"has {len(values)} {counted.format(n=n)}")
    return tuple(v / sum(values) for v in values)


def smallest_size(content_hw: HW, min_side: int) -> int:
    """The smallest long side whose rounded short side reaches min_side (resizing as the run does)."""
    size = math.ceil(min_side * max(content_hw) / min(content_hw))
    while size > 1 and min(fit_long_side(*content_hw, size - 1)) >= min_side:
        size -= 1
    return size


def style_size(style_hw: HW, content_size: HW, style_scale: float) -> HW:
    """A style image is resized so that its long side is the content's working long side x style_scale."""
    return fit_long_side(*style_hw, max(1, round(max(content_size) * style_scale)))


def _layers(manifest: Manifest, options: StylizeOptions) -> tuple[str, tuple[str, ...]]:
    content_layer = options.content_layer or manifest.default_content_layer
    style_layers = tuple(options.style_layers or manifest.default_style_layers)
    require_taps(manifest, (content_layer, *style_layers))
    return content_layer, style_layers


def _check_sizes(
    manifest: Manifest, content_hw: HW, size: HW, style_sizes: Sequence[HW], style_names: Sequence[str]
) -> None:
    m, deepest = manifest.min_size, manifest.layers[-1].name
    if min(size) < m:
        smallest = smallest_size(content_hw, m)
        raise SizeError(
            f"working size {size[1]}x{size[0]} px is too small for layer {deepest} of this model (it "
            f"needs >= {m} px on the short side); use --size {smallest} or more",
            smallest,
        )
    for name, (sh, sw) in zip(style_names, style_sizes):
        if min(sh, sw) < m:
            raise SizeError(
                f"{name} becomes {sw}x{sh} px at this --size and --style-scale, too small for layer "
                f"{deepest} (>= {m} px on the short side); raise --style-scale or --size, or crop the "
                "style image to a less elongated shape"
            )


def _check_memory(
    manifest: Manifest, content_hw: HW, size: HW, options: StylizeOptions, weights_bytes: int, available: int
) -> int:
    pairs = options.lbfgs_pairs
    opt = options.optimizer
    need = memory.estimate_bytes(manifest, *size, pairs, weights_bytes, opt)
    if need <= available:
        return need
    fits = memory.largest_fitting_long_side(manifest, content_hw, pairs, available, weights_bytes, opt)
    if fits >= 16 and min(fit_long_side(*content_hw, fits)) >= manifest.min_size:
        hint = f"try --size {fits}"
        low_pairs = dataclasses.replace(options, low_memory=True).lbfgs_pairs
        if low_pairs < pairs and memory.estimate_bytes(manifest, *size, low_pairs, weights_bytes, opt) <= available:
            hint += " or --low-memory (fewer L-BFGS pairs; fits this size)"
    else:
        fits, hint = 0, "no working size fits; free some memory or run on a machine with more"
    raise MemoryEstimateError(
        f"{size[1]}x{size[0]} px needs about {need / 2**30:.1f} GiB but "
        f"{available / 2**30:.1f} GiB is available; {hint}",
        fits,
    )


def plan_run(
    manifest: Manifest,
    content_hw: HW,
    style_hws: Sequence[HW],
    options: StylizeOptions,
    *,
    weights_bytes: int = 0,
    available: int | None = None,
    style_names: Sequence[str] | None = None,
    style_masks: Sequence[Any] | None = None,
    style_source_masks: Sequence[Any] | None = None,
) -> Plan:
    """Resolve layers and weights against the model, size the stages, check the style masks, estimate memory.

    content_hw / style_hws: the images' sizes as loaded. available: bytes of free memory to check the estimate
    against (None: no check; the CLI passes memory.available_bytes() on the CPU provider). style_masks /
    style_source_masks: per style image an (H, W) mask array in [0, 1] or None (engine/region_plan.py), named by
    options.style_masks / style_source_masks. Raises OptionError (bad option combination or mask), LayerError,
    SizeError or MemoryEstimateError."""
    if not style_hws:
        raise OptionError("styles", "must name at least one style image")
    content_layer, style_layers = _layers(manifest, options)
    weighting = options.style_layer_weights
    lam = None
    if weighting != "auto":
        given = None if weighting == "equal" else weighting
        lam = _normalise("style_layer_weights", given, len(style_layers), "values for {n} style layers")
    blend = _normalise("style_blend", options.style_blend, len(style_hws), "weights for {n} style image(s)")
    names = style_names or [f"style image {i + 1}" for i in range(len(style_hws))]
    stages = []
    for i, (hw, iterations) in enumerate(schedule(content_hw, options, manifest.min_size), start=1):
        style_sizes = tuple(style_size(s, hw, options.style_scale) for s in style_hws)
        _check_sizes(manifest, content_hw, hw, style_sizes, names)
        stages.append(Stage(i, hw, style_sizes, iterations))
    regions = plan_regions(
        manifest, content_hw, style_hws, stages, style_layers, options, style_masks, style_source_masks, names
    )
    size = stages[-1].size
    if available is not None:
        need = _check_memory(manifest, content_hw, size, options, weights_bytes, available)
    else:
        need = memory.estimate_bytes(manifest, *size, options.lbfgs_pairs, weights_bytes, options.optimizer)
    # the recommended beta depends on how the layers are weighted (auto: relative Gram errors; else the seeds' J_s)
    beta = manifest.style_weight if lam is None else manifest.style_weight_equal
    alpha = manifest.content_weight if options.content_weight is None else options.content_weight
    style_weight = beta if options.style_weight is None else options.style_weight
    return Plan(
        options=options,
        content_layer=content_layer,
        style_layers=style_layers,
        style_layer_weights=lam,
        style_blend=blend,
        content_weight=alpha,
        style_weight=style_weight,
        tv_weight=options.tv_weight,
        init=options.init,
        seed=options.seed,
        preserve_colors=options.preserve_colors,
        bounds=options.bounds,
        optimizer=options.optimizer,
        lbfgs_pairs=options.lbfgs_pairs,
        stages=tuple(stages),
        memory_bytes=need,
        recommended_style_weight=beta * alpha / manifest.content_weight if manifest.content_weight else beta,
        warnings=weight_scale_warnings(alpha, style_weight, manifest.content_weight, beta, lam is None),
        regions=regions,
    )


def plan_for_model(model: Any, content_hw: HW, style_hws: Sequence[HW], options: StylizeOptions, **kw: Any) -> Plan:
    """plan_run for a loaded model, with the memory check against free RAM on the CPU provider (on CUDA the host RAM
    is not the limit) and the weights file's size counted."""
    on_cpu = model.provider == "CPUExecutionProvider"
    return plan_run(
        model.manifest,
        content_hw,
        style_hws,
        options,
        weights_bytes=(model.path / model.manifest.weights.file).stat().st_size,
        available=memory.available_bytes() if on_cpu else None,
        **kw,
    )
