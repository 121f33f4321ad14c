"""Executing interventions: pure run functions, executors and a resumable run store.

A run is a pure function of JSON parameters (seeds included). Its identity
is a content hash of the function and the canonical parameters
(`run_key`). `run_campaign` executes the runs a store does not hold yet on a
serial, process-pool or Ray executor and commits each result to a SQLite
store (WAL mode) as it arrives, so a killed campaign resumes where it
stopped, without recomputing or losing a finished run.
"""

from .campaign import CampaignSummary, run_campaign
from .executors import EXECUTORS, Outcome, ProcessExecutor, RayExecutor, SerialExecutor, make_executor
from .identity import canonical_json, canonical_params, function_name, run_key
from .store import RunStore, StoreError

__all__ = [
    "CampaignSummary", "run_campaign", "EXECUTORS", "Outcome", "ProcessExecutor", "RayExecutor", "SerialExecutor",
    "make_executor", "canonical_json", "canonical_params", "function_name", "run_key", "RunStore", "StoreError",
]
