"""netspec: write a network as a YAML layer table; check it, cost it, compile it to Flax."""

from .analyze import NodeReport, Report, RowReport, analyze
from .compiled import Compiled, compile
from .diagram import draw
from .errors import Location, SpecError
from .export import ExportResult, export_model
from .graph import Graph, Head, Node, Row
from .importers import ImportedSpec, import_model
from .run import TrainedRun, load_run
from .specfile import analyze_spec, resolve_source, zoo_dir, zoo_names
from .weights import load_weights, plan_weights

__version__ = "0.1.0"

__all__ = [
    "Compiled",
    "ExportResult",
    "Graph",
    "Head",
    "ImportedSpec",
    "Location",
    "Node",
    "NodeReport",
    "Report",
    "Row",
    "RowReport",
    "SpecError",
    "TrainedRun",
    "__version__",
    "analyze",
    "analyze_spec",
    "compile",
    "draw",
    "export_model",
    "import_model",
    "load_run",
    "load_weights",
    "plan_weights",
    "resolve_source",
    "zoo_dir",
    "zoo_names",
]
