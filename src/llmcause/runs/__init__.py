"""Executing interventions: pure run functions, executors and a resumable run store.

A run is a pure function of JSON parameters (seeds included). Its identity
is a content hash of the function and the canonical parameters
(`run_key`). `run_campaign` executes the runs a store does not hold yet on a
serial, process-pool or Ray executor and commits each result to a SQLite
store (WAL mode) as it arrives, so a killed campaign resumes where it
stopped, without recomputing or losing a finished run.
"""

import importlib

_WHERE = {"CampaignSummary": "campaign", "run_campaign": "campaign", "EXECUTORS": "executors",
          "Outcome": "executors", "ProcessExecutor": "executors", "RayExecutor": "executors",
          "SerialExecutor": "executors", "make_executor": "executors", "canonical_json": "identity",
          "canonical_params": "identity", "function_name": "identity", "run_key": "identity", "RunStore": "store",
          "StoreError": "store"}

__all__ = [
    "CampaignSummary", "run_campaign", "EXECUTORS", "Outcome", "ProcessExecutor", "RayExecutor", "SerialExecutor",
    "make_executor", "canonical_json", "canonical_params", "function_name", "run_key", "RunStore", "StoreError",
]


def __getattr__(name: str):
    # imported on first use, so that `llmcause --help` loads neither scikit-learn nor pandas
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
