"""Deterministic rewriters for RATE: markdown on/off and long/short.

They follow the `rate.Rewriter` protocol (``rewrite(texts, target, prompts)``)
and are meant as transparent baselines and sandboxes; an LLM rewriter plugs
into the same protocol. What each changes besides its attribute:
- the markdown rewriter only adds or removes markup (its header repeats the
  text's own first words), so the distinct words stay the same;
- the length rewriter lengthens by repeating the text's own sentences (no new
  word), but shortens by cutting whole sentences, which drops whatever only
  those sentences said. That loss is a side effect of the rewrite of the
  same kind on both sides of each RATE difference, so RATE cancels it; the
  single-rewrite estimate does not.
- ``LengthRewriter(restate_prefix="In other words, ")`` restates with a
  filler phrase, as a paraphrasing model would: it adds words in one direction
  only, a side effect that RATE cannot cancel (see `rate.rewrite_word_leak`).
"""

from __future__ import annotations

import re
from typing import Sequence

from .features import count_tokens, strip_fenced_code, style_counts

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_HEADER_LINE = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$")
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+")
_BOLD = re.compile(r"\*\*(?=\S)([^\n]*?\S)\*\*|__(?=\S)([^\n]*?\S)__")
_FENCE_BLOCK = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
FILLER_PREFIX = "In other words, "  # a paraphrasing filler: adds words when lengthening


def split_sentences(text: str) -> list[str]:
    """Sentences of plain text (split after . ! ? followed by space; paragraphs kept apart)."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        para = " ".join(para.split())
        if para:
            out.extend(s.strip() for s in _SENTENCE.split(para) if s.strip())
    return out


def has_markdown(text: str) -> int:
    """W for the markdown attribute: 1 when the text has any header, list item or bold span."""
    c = style_counts(text)
    return int(c["headers"] + c["lists"] + c["bold"] > 0)


class MarkdownRewriter:
    """Markdown on (target 1): a header, bold lead words, list items; off (target 0): plain prose.

    Fenced code blocks are left untouched. Turning markdown on first strips
    any existing markup, so the result does not depend on how much markup
    the input had.
    """

    def __init__(self, bold_words: int = 2, max_header_words: int = 5):
        self.bold_words = bold_words
        self.max_header_words = max_header_words

    def rewrite(self, texts: Sequence[str], target: int, prompts: Sequence[str] | None = None) -> list[str]:
        return [self.add(t) if target else self.strip(t) for t in texts]

    def strip(self, text: str) -> str:
        """Remove headers, list markers and bold; keep code blocks and every word."""
        pieces, last = [], 0
        for m in _FENCE_BLOCK.finditer(text):
            pieces.append(self._strip_prose(text[last:m.start()]))
            pieces.append(m.group(0).strip("\n"))
            last = m.end()
        pieces.append(self._strip_prose(text[last:]))
        return "\n\n".join(p for p in pieces if p.strip())

    def _strip_prose(self, prose: str) -> str:
        paragraphs, current = [], []
        for line in prose.splitlines():
            h = _HEADER_LINE.match(line)
            if h:
                line = h.group(1).strip()
                if line and line[-1] not in ".!?:":
                    line += "."
            line = _LIST_LINE.sub("", line)
            line = _BOLD.sub(lambda m: m.group(1) or m.group(2), line).strip()
            if not line:
                if current:
                    paragraphs.append(" ".join(current))
                    current = []
                continue
            if line[-1] not in ".!?:;," and h is None:
                line += "."
            current.append(line)
        if current:
            paragraphs.append(" ".join(current))
        return "\n\n".join(paragraphs)

    def add(self, text: str) -> str:
        """Plain text → a header from its first words, bold lead words, sentences as list items."""
        plain = self.strip(text)
        prose, _ = strip_fenced_code(plain)
        sentences = split_sentences(prose)
        if not sentences:
            return plain
        first_words = sentences[0].rstrip(".!?:").split()[: self.max_header_words]
        header = "## " + " ".join(first_words)
        lines = [header, ""]
        for s in sentences:
            words = s.split()
            k = min(self.bold_words, len(words))
            lead = " ".join(words[:k]).rstrip(",;:")
            rest = s[len(" ".join(words[:k])):]
            lines.append(f"- **{lead}**{rest}" if lead else f"- {s}")
        code = [m.group(0).strip("\n") for m in _FENCE_BLOCK.finditer(plain)]
        return "\n".join(lines) + ("\n\n" + "\n\n".join(code) if code else "")


class LengthRewriter:
    """Long (target 1): at least ``threshold`` tokens, by restating sentences; short (0): fewer, by cutting.

    Shortening keeps the longest run of leading sentences below the
    threshold (cutting inside the first sentence if it alone is too long), so
    it drops what the cut sentences said. Lengthening appends the text's own
    sentences again, in turn, until the threshold is reached: with the default
    empty ``restate_prefix`` it adds no word the text did not have; with a
    prefix (e.g. `FILLER_PREFIX`) each restatement starts with it, which adds
    the prefix's words to long texts only.
    """

    def __init__(self, threshold: int = 150, tokenizer: str = "simple", restate_prefix: str = ""):
        if threshold < 2:
            raise ValueError("the length threshold must be at least 2 tokens")
        self.threshold = int(threshold)
        self.tokenizer = tokenizer
        self.restate_prefix = str(restate_prefix)

    def is_long(self, text: str) -> int:
        """W for the length attribute: 1 when the text has at least ``threshold`` tokens."""
        return int(count_tokens(text, self.tokenizer) >= self.threshold)

    def rewrite(self, texts: Sequence[str], target: int, prompts: Sequence[str] | None = None) -> list[str]:
        return [self.lengthen(t) if target else self.shorten(t) for t in texts]

    def _tokens_joined(self, pieces: list[str], counts: list[int]) -> int:
        # Simple tokens never span whitespace, so counts add up over space-joined pieces; other
        # tokenizers are recounted on the joined text.
        return sum(counts) if self.tokenizer == "simple" else count_tokens(" ".join(pieces), self.tokenizer)

    def shorten(self, text: str) -> str:
        if not self.is_long(text):
            return text
        kept: list[str] = []
        counts: list[int] = []
        for s in split_sentences(text):
            c = count_tokens(s, self.tokenizer)
            if self._tokens_joined([*kept, s], [*counts, c]) >= self.threshold:
                break
            kept.append(s)
            counts.append(c)
        if kept:
            return " ".join(kept)
        words = text.split()
        while words and count_tokens(" ".join(words), self.tokenizer) >= self.threshold:
            words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
        return " ".join(words)

    def lengthen(self, text: str) -> str:
        if self.is_long(text):
            return text
        sentences = split_sentences(text) or ["This is the answer."]
        pieces = list(sentences)
        counts = [count_tokens(s, self.tokenizer) for s in pieces]
        i = 0
        while self._tokens_joined(pieces, counts) < self.threshold:
            s = sentences[i % len(sentences)]
            extra = self.restate_prefix + (s[0].lower() + s[1:]) if self.restate_prefix and s else s
            pieces.append(extra)
            counts.append(count_tokens(extra, self.tokenizer))
            i += 1
        return " ".join(pieces)
