"""Executing interventions: pure run functions, executors, a resumable run store, and models behind a call layer.

A run is a pure function of JSON parameters (seeds included). Its identity
is a content hash of the function and the canonical parameters
(`run_key`). `run_campaign` executes the runs a store does not hold yet on a
serial, process-pool or Ray executor and commits each result to a SQLite
store (WAL mode) as it arrives, so a killed campaign resumes where it
stopped, without recomputing or losing a finished run.

Models (`Model`, `load_model`: ``sandbox:``, ``python:``, ``openai:`` specs)
answer through a `CallLayer` that caches every call in the same store,
retries what can be retried, keeps to rate limits and counts tokens and cost.
"""

from .._lazy import lazy_exports

_WHERE = {"CampaignSummary": "campaign", "run_campaign": "campaign", "EXECUTORS": "executors",
          "Outcome": "executors", "ProcessExecutor": "executors", "RayExecutor": "executors",
          "SerialExecutor": "executors", "make_executor": "executors", "canonical_json": "identity",
          "canonical_params": "identity", "function_name": "identity", "run_key": "identity", "RunStore": "store",
          "StoreError": "store", "CallError": "calls", "CallLayer": "calls", "CallOptions": "calls",
          "CallStats": "calls", "Reply": "calls", "PRICES": "calls", "ChatModel": "models", "Model": "models",
          "ModelSpec": "models", "ModelSpecError": "models", "load_model": "models", "parse_choice": "models",
          "parse_number": "models", "parse_spec": "models"}

__all__ = [
    "CampaignSummary", "run_campaign", "EXECUTORS", "Outcome", "ProcessExecutor", "RayExecutor", "SerialExecutor",
    "make_executor", "canonical_json", "canonical_params", "function_name", "run_key", "RunStore", "StoreError",
    "CallError", "CallLayer", "CallOptions", "CallStats", "Reply", "PRICES", "ChatModel", "Model", "ModelSpec",
    "ModelSpecError", "load_model", "parse_choice", "parse_number", "parse_spec",
]


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
