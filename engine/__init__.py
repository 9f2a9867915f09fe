"""nst.engine: neural style transfer on an exported model with onnxruntime, NumPy and scipy. No PyTorch."""

from .errors import (
    DeviceError,
    ImageError,
    LayerError,
    MemoryEstimateError,
    ModelError,
    NonFiniteError,
    NSTError,
    PlanError,
    SizeError,
)
from .images import fit_long_side, load_image, resize, save_image
from .losses import content_loss, gram, style_loss, tv_loss
from .manifest import Manifest, read_manifest
from .model import Model, load_model
from .options import OptionError, StylizeOptions
from .plan import Plan, Stage, plan_run
from .stylize import Progress, StylizeResult, stylize

__all__ = [
    "DeviceError",
    "ImageError",
    "LayerError",
    "Manifest",
    "MemoryEstimateError",
    "Model",
    "ModelError",
    "NSTError",
    "NonFiniteError",
    "OptionError",
    "Plan",
    "PlanError",
    "Progress",
    "SizeError",
    "Stage",
    "StylizeOptions",
    "StylizeResult",
    "content_loss",
    "fit_long_side",
    "gram",
    "load_image",
    "load_model",
    "plan_run",
    "read_manifest",
    "resize",
    "save_image",
    "style_loss",
    "stylize",
    "tv_loss",
]
