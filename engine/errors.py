"""Engine exceptions. Each message is one line that names the problem and what to do."""


class NSTError(Exception):
    """Base of the errors the CLI turns into one line and exit code 1."""


class ModelError(NSTError):
    """The model directory is missing, incomplete, corrupt or from an incompatible version."""


class DeviceError(NSTError):
    """The requested execution provider is not available."""


class ImageError(NSTError):
    """An image cannot be read or written."""


class MemoryEstimateError(NSTError):
    """The requested size would not fit in memory."""


class NonFiniteError(NSTError):
    """The loss or its gradient became NaN or Inf at `iteration` (1-based: the iteration being computed).

    `image` holds the lowest-loss finite image evaluated before (H, W, 3) float32, or None when no evaluation was finite
    (then there is nothing worth writing); `history` the per-iteration entries completed so far."""

    def __init__(self, message: str, iteration: int, image=None, history=None):
        super().__init__(message)
        self.iteration, self.image, self.history = iteration, image, list(history or [])
