"""Shared fixtures: small data files in a temporary folder."""

from __future__ import annotations

import os

import numpy as np
import pytest

# The tour's row with a real local model takes tens of seconds; its own test runs it (tests/test_runs_local.py).
os.environ.setdefault("LLMCAUSE_LOCAL_MODEL", "off")

from llmcause.core.simulate import confounded_world


@pytest.fixture
def world_frame():
    """A confounded world as a DataFrame (true ATE = 1), with a prompt-like cluster column."""
    world = confounded_world(1200, seed=11)
    df = world.to_frame()
    df["prompt"] = [f"p{i // 3}" for i in range(df.shape[0])]
    df["domain"] = np.where(df["x4"] > 0, "code", "chat")
    return df


@pytest.fixture
def world_csv(tmp_path, world_frame):
    path = tmp_path / "world.csv"
    world_frame.to_csv(path, index=False)
    return path
