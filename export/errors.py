"""The exporter's exceptions (importable without torch or onnx)."""


class ExportError(Exception):
    """The export could not be done as asked (e.g. the output directory exists)."""


class ExportValidationError(ExportError):
    """The exported graphs disagree with the torch module beyond tolerance."""


class WeightsError(ExportError):
    """Weights could not be loaded; the message names the file or layer and what to do."""
