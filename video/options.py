"""VideoOptions: the options nst-video has beside StylizeOptions (which apply to every frame), each with its default
and help written once. The CLI generates its typer options from these fields (cli/options_cli.py), the API takes the
dataclass, and the settings file of a resumable run records asdict() of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from nst.engine.options import OptionError, _finite, _positive_int

FlowPreset = Literal["ultrafast", "fast", "medium"]

# Chosen by measurement (bench/video_bench.py --sweep on the pan clip at 256 px; bench/README.md "nst-video"): gamma
# 1e8 halves the warping error of the warped start alone at some loss of fine texture (3e8 and up undo the style);
# 10 iterations keep the style 5 do not, and 20 add little for 1.6x the time.
DEFAULT_FRAME_ITERATIONS = 10
DEFAULT_TEMPORAL_WEIGHT = 1e8


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class VideoOptions:
    frame_iterations: int = _opt(
        DEFAULT_FRAME_ITERATIONS,
        "L-BFGS iterations of every frame after the first (one stage at --size, started from the previous "
        "stylized frame warped by the optical flow); the first frame runs --iterations coarse to fine.",
    )
    temporal_weight: float = _opt(
        DEFAULT_TEMPORAL_WEIGHT,
        "gamma: weight of the temporal loss (1/D) sum c (x - warped previous output)^2 (0 = no temporal loss, the "
        "warped start only).",
    )
    flow: FlowPreset = _opt("medium", "OpenCV DIS optical-flow preset between consecutive input frames.")
    long_term: bool = _opt(
        False,
        "Long-term consistency: the temporal loss also against the outputs 10, 20 and 40 frames back, each where "
        "no nearer frame is consistent (Ruder et al.'s c_long): less drift where things reappear; holds 40 frames.",
    )

    def __post_init__(self) -> None:
        _positive_int("frame_iterations", self.frame_iterations)
        _finite("temporal_weight", self.temporal_weight)
        if self.flow not in get_args(FlowPreset):
            raise OptionError("flow", f"{self.flow!r} is unknown; choose one of: {', '.join(get_args(FlowPreset))}")
