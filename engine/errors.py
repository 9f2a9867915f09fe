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
    """The loss or its gradient became NaN or Inf; `image` holds the last finite iterate (H, W, 3), if any."""

    def __init__(self, message: str, iteration: int, image=None):
        super().__init__(message)
        self.iteration, self.image = iteration, image
