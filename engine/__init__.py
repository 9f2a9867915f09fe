"""nst.engine: neural style transfer on an exported model with onnxruntime, NumPy and scipy. No PyTorch."""
from .errors import DeviceError, ImageError, MemoryEstimateError, ModelError, NonFiniteError, NSTError
from .images import load_image, resize, save_image
from .losses import content_loss, gram, style_loss, tv_loss
from .model import Model, load_model, read_manifest
from .stylize import Progress, StylizeResult, stylize

__all__ = ["DeviceError", "ImageError", "MemoryEstimateError", "Model", "ModelError", "NSTError", "NonFiniteError",
           "Progress", "StylizeResult", "content_loss", "gram", "load_image", "load_model", "read_manifest", "resize",
           "save_image", "stylize", "style_loss", "tv_loss"]
