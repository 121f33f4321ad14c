"""llmcause: causal inference for LLM development and evaluation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmcause")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["Estimate", "EstimateTable", "__version__"]


def __getattr__(name: str):
    # the result types load numpy, so they are imported on first use: `llmcause --help` stays fast
    if name in ("Estimate", "EstimateTable"):
        from .core import estimate

        return getattr(estimate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
