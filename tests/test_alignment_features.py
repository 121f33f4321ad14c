"""Style counts from text, battle features, Arena's formats, votes, and the shipped slice."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmcause.alignment.arena import assistant_text, read_arena_battles, winner_outcome
from llmcause.alignment.battles import prepare_battles
from llmcause.alignment.datasets import arena_votes_long, build_arena_slice, load_arena_battles
from llmcause.alignment.features import (content_counts, normalized_difference, resolve_tokenizer, simple_tokens,
                                         standardize_gaps, style_counts)
from llmcause.io import DataError

DATA = Path(__file__).parent / "data" / "alignment"
ROOT = Path(__file__).resolve().parents[1]


def _public_arena_folder() -> Path:
    """The public Arena files: $LLMCAUSE_ARENA_JUDGES, or ../shared/data/arena-judges beside the repository."""
    candidates = [Path(os.environ["LLMCAUSE_ARENA_JUDGES"])] if "LLMCAUSE_ARENA_JUDGES" in os.environ else []
    candidates += [up / "shared" / "data" / "arena-judges" for up in (ROOT.parent, ROOT.parent.parent)]
    return next((c for c in candidates if (c / "arena_subsets").is_dir()), candidates[-1])


SHARED = _public_arena_folder()

MARKDOWN = """# Title

Some **bold** text and __more bold__ and a ** not bold ** pair.

## Steps
- first item
* second item
  + nested item
1. numbered
2) also numbered
-not an item

```python
# a comment, not a header
- not a list item
print("**not bold**")
```

See [the docs](https://example.org/a) and https://example.org/b.
"""


def test_markdown_counts_ignore_fenced_code():
    c = style_counts(MARKDOWN)
    assert c["headers"] == 2
    assert c["lists"] == 5
    assert c["bold"] == 2
    assert c["code_blocks"] == 1
    assert c["links"] == 2
    # length counts every token, code included
    assert c["length"] == len(simple_tokens(MARKDOWN))


def test_unclosed_fence_runs_to_the_end():
    c = style_counts("Intro **b**\n```\n# inside\n- inside")
    assert (c["headers"], c["lists"], c["bold"], c["code_blocks"]) == (0, 0, 1, 1)


def test_simple_tokenizer_splits_words_punctuation_and_cjk():
    assert simple_tokens("Hello, world!") == ["Hello", ",", "world", "!"]
    assert simple_tokens("数字电路") == ["数", "字", "电", "路"]
    assert simple_tokens("naïve café 42") == ["naïve", "café", "42"]


def test_tokenizer_resolution():
    assert resolve_tokenizer("simple") == "simple"
    assert resolve_tokenizer("auto") in ("simple", "tiktoken")
    with pytest.raises(ValueError):
        resolve_tokenizer("words")


def test_content_counts_do_not_grow_with_repetition():
    once = content_counts("The cat sat on the mat. It was 3 pm.")
    twice = content_counts("The cat sat on the mat. It was 3 pm. The cat sat on the mat.")
    assert once["distinct_words"] == twice["distinct_words"] == 8
    assert once["numbers"] == 1


def test_normalized_difference_and_standardisation():
    a = np.array([10, 0, 5, 7])
    b = np.array([0, 10, 5, 3])
    d = normalized_difference(a, b)
    np.testing.assert_allclose(d, [10 / 11, -10 / 11, 0.0, 4 / 11])
    feats = standardize_gaps(np.column_stack([d, np.zeros(4)]), ["length", "links"])
    assert feats.names == ["length"] and feats.dropped == ["links"]
    np.testing.assert_allclose(feats.values.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(feats.values.std(axis=0), 1.0)
    np.testing.assert_allclose(feats.transform(d[:, None]), feats.values)
    with pytest.raises(ValueError):
        normalized_difference([-1], [2])


def test_arena_reader_both_content_shapes_and_multi_turn():
    df = read_arena_battles(DATA / "arena_sample.jsonl")
    assert list(df["n_turns"]) == [1, 2, 1]
    assert df["text_a"][1] == "Hello! **Welcome**.\n\n- Goodbye\n- See you"
    assert df["prompt"][0] == "How do I cook pasta?"
    counts = style_counts(df["text_a"][0])
    assert (counts["headers"], counts["lists"], counts["bold"], counts["code_blocks"], counts["links"]) == \
        (1, 2, 1, 1, 2)
    np.testing.assert_array_equal(winner_outcome(df, "winner"), [1.0, 0.5, 0.0])


def test_kaggle_release_is_read_too():
    df = read_arena_battles(DATA / "kaggle_sample.csv")
    assert list(df["winner"]) == ["model_a", "tie"]
    assert df["text_a"][0] == "**A** one"
    assert df["text_b"][1] == "\n\nz"
    assert df["prompt"][1] == "Q2\n\nQ2b"


def test_assistant_text_accepts_plain_and_json_conversations():
    assert assistant_text("just text") == "just text"
    conv = '[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]'
    assert assistant_text(conv) == "a"
    assert assistant_text("[not json") == "[not json"


def test_winner_values():
    df = pd.DataFrame({"w": ["model_a", "B", "tie", "both_bad", "Model_A"]})
    np.testing.assert_array_equal(winner_outcome(df, "w"), [1, 0, 0.5, 0.5, 1])
    dropped = winner_outcome(df, "w", ties="drop")
    assert np.isnan(dropped[2]) and np.isnan(dropped[3])
    with pytest.raises(DataError, match=r"row 2: unknown winner value 'left'"):
        winner_outcome(pd.DataFrame({"w": ["model_a", "left"]}), "w")
    with pytest.raises(DataError, match=r"row 2: 1\.5 is not a probability"):  # the value, not numpy's repr
        winner_outcome(pd.DataFrame({"w": [0.2, 1.5]}), "w")


def test_prepare_battles_from_features_and_the_caller_frame_is_untouched():
    df = load_arena_battles()
    before = df.copy()
    b = prepare_battles(df, model_a="model_a", model_b="model_b", winner="winner",
                        features=["length", "headers", "lists", "bold"], controls=["distinct_words", "is_code"])
    pd.testing.assert_frame_equal(df, before)
    assert b.n == 552 and b.style.names == ["length", "headers", "lists", "bold"]
    np.testing.assert_allclose(b.style.values.std(axis=0), 1.0)
    assert b.controls.shape == (552, 4)


def test_shipped_slice_and_long_votes():
    df = load_arena_battles()
    assert df.shape[0] == 552
    assert set(df["winner"]) == {"model_a", "model_b"}
    long = arena_votes_long(df)
    assert set(long["annotator"]) == {"human", "gpt-4o-mini", "gpt-5.2"}
    assert long.shape[0] == 552 * 3 - int(df["judge_gpt-4o-mini"].isna().sum() + df["judge_gpt-5.2"].isna().sum())


# The slice was built where the Unicode database is version 14 or newer (Python >= 3.11): one answer
# contains U+A7D8, a letter only since Unicode 14, which older databases do not count as a word character.
_UNICODE_14 = tuple(int(x) for x in unicodedata.unidata_version.split(".")) >= (14,)


@pytest.mark.skipif(not (SHARED / "arena_subsets").is_dir(), reason="the public Arena files are not here")
@pytest.mark.skipif(not _UNICODE_14, reason="token counts of the shipped slice follow Unicode >= 14 (Python >= 3.11)")
def test_shipped_slice_is_reproduced_from_the_public_files():
    rebuilt = build_arena_slice(str(SHARED))
    shipped = load_arena_battles()
    pd.testing.assert_frame_equal(rebuilt.reset_index(drop=True), shipped, check_dtype=False)
