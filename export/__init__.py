"""nst.export: VGG -> ONNX features graph + gradient (VJP) graph + manifest. Needs PyTorch and onnx, imported lazily:
the package's constants (layer tables, defaults, error types) import without them."""

from .arch import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, vgg_layers
from .errors import ExportError, ExportValidationError, WeightsError
from .exporter import DEFAULT_OUT, ExportReport, export_model

__all__ = [
    "DEFAULT_CONTENT_LAYER",
    "DEFAULT_OUT",
    "DEFAULT_STYLE_LAYERS",
    "ExportError",
    "ExportReport",
    "ExportValidationError",
    "WeightsError",
    "export_model",
    "vgg_layers",
]
