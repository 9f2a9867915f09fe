"""nst.export: VGG -> ONNX features graph + gradient (VJP) graph + manifest. Needs PyTorch and onnx."""
from .arch import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, vgg_layers
from .exporter import DEFAULT_OUT, ExportError, ExportReport, export_model
from .validate import ExportValidationError
from .weights import WeightsError

__all__ = ["DEFAULT_CONTENT_LAYER", "DEFAULT_STYLE_LAYERS", "DEFAULT_OUT", "ExportError", "ExportReport",
           "ExportValidationError", "WeightsError", "export_model", "vgg_layers"]
