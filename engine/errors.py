"""Engine exceptions. Each message is one line that names the problem and what to do; options are named as nst-run
spells them (--size), which is the API's keyword with dashes for underscores."""

from __future__ import annotations

from typing import Any


class NSTError(Exception):
    """Base of the errors the CLI turns into one line and exit code 1."""


class ModelError(NSTError):
    """The model directory is missing, incomplete, corrupt or from an incompatible version."""


class LayerError(ModelError):
    """A requested layer is not exported by the model."""


class DeviceError(NSTError):
    """The requested execution provider is not available."""


class ImageError(NSTError):
    """An image cannot be read or written."""


class PlanError(NSTError):
    """The run cannot be planned as asked (size, memory)."""


class SizeError(PlanError):
    """The working size (or a style image at it) is too small for the deepest layer. `smallest`: the smallest --size
    that works for the content, or None when the problem is a style image."""

    def __init__(self, message: str, smallest: int | None = None):
        super().__init__(message)
        self.smallest = smallest


class MemoryEstimateError(PlanError):
    """The requested size would not fit in memory. `fits`: the largest --size that would (0: none)."""

    def __init__(self, message: str, fits: int = 0):
        super().__init__(message)
        self.fits = fits


class NonFiniteError(NSTError):
    """The loss or its gradient became NaN or Inf at `iteration` (1-based: the iteration being computed).

    `image` holds the lowest-loss finite image evaluated before (H, W, 3) float32, or None when no evaluation was finite
    (then there is nothing worth writing); `history` the per-iteration entries completed so far."""

    def __init__(self, message: str, iteration: int, image: Any = None, history: list[dict] | None = None):
        super().__init__(message)
        self.iteration, self.image, self.history = iteration, image, list(history or [])
