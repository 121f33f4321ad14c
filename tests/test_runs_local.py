"""A real small model (SmolLM2-135M through llama-cpp-python's server on 127.0.0.1) in the executed swap audit.

Skipped where the extra ``local`` and the weights are not installed. Few and
short calls: tokens are slow on a busy machine.
"""

from __future__ import annotations

import pytest

from llmcause.runs.local import local_model_missing

pytestmark = pytest.mark.skipif(local_model_missing() is not None, reason=str(local_model_missing()))


def test_smollm2_as_a_judge_shows_its_position_bias():
    from llmcause.evaluation.tour import local_judge_row

    row, why = local_judge_row(seed=0, force=True)
    assert why is None
    bias = row.causal
    # SmolLM2-135M picks "A" whichever answer is shown first: a real, large position bias.
    assert bias.estimate > 0.3 and bias.ci_low > 0.0
    assert bias.diagnostics["n_battles"] + bias.diagnostics["verdicts_missing"] == 12
    assert "SmolLM2" in row.question


def test_continuation_logprob_in_process_agrees_with_the_reference():
    from llmcause.runs.local import LocalLogprobModel

    model = LocalLogprobModel()
    lp = model.logprob(["The capital of France is", "The capital of France is", "The"],
                       [" Paris.", " Berlin.", " capital of France is Paris."])
    # A transformers run of the same GGUF file gives -0.638 for " Paris."; per token after "The":
    # -11.45, -0.41, -2.52, -0.43, -0.26, -0.38 (sum -15.45). The server's echo log-probabilities
    # are shifted by one token for this model, which is why scoring is done in-process.
    assert lp[0] == pytest.approx(-0.638, abs=0.01)
    assert lp[1] < lp[0] - 3
    assert lp[2] == pytest.approx(-15.45, abs=0.05)
    with pytest.raises(ValueError, match="prompt is empty"):
        model.logprob([""], ["x"])
