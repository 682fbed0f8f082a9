"""Models out: ONNX, StableHLO and ejected Flax with weights (`netspec export`)."""

from .exporter import ExportResult, export_model
from .metadata import FORMATS

__all__ = ["FORMATS", "ExportResult", "export_model"]
