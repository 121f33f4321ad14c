"""llmcause: causal inference for LLM development and evaluation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmcause")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

from .core import Estimate, EstimateTable  # noqa: E402

__all__ = ["Estimate", "EstimateTable", "__version__"]
