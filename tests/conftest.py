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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the whole session, shut down at the end.

    Ray's node start waits at most 30 s for its own agents; on an overloaded
    machine that can fail, and then these tests skip with the reason, unless
    LLMCAUSE_REQUIRE_RAY is set (as in CI), where a failed start fails them.
    """
    import os

    ray = pytest.importorskip("ray") if not os.environ.get("LLMCAUSE_REQUIRE_RAY") else __import__("ray")
    started = False
    if not ray.is_initialized():
        # Ray's workers inherit this environment: let them import functions defined in test modules.
        here = os.path.dirname(os.path.abspath(__file__))
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *([saved] if saved else [])])
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            started = True
        except Exception as exc:  # Ray raises a bare Exception when its node does not come up in time
            if os.environ.get("LLMCAUSE_REQUIRE_RAY"):
                raise
            pytest.skip(f"a local Ray cluster could not start here: {str(exc).splitlines()[0]}")
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    yield ray
    if started:
        ray.shutdown()
