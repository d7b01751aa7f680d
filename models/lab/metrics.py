"""Caption metrics in pure Python: BLEU-4, ROUGE-L and CIDEr-D, as the COCO caption evaluation
(pycocoevalcap) computes them, without its Java tokenizer.

Text is tokenised by :func:`tokenize` (lower case, words and numbers, punctuation dropped, as
the PTB tokenizer's output is after pycocoevalcap removes punctuation). Each metric takes the
hypotheses and the references per example, already tokenised or not:

- :func:`bleu` is corpus BLEU with the closest reference length for the brevity penalty and
  pycocoevalcap's tiny constants (no other smoothing);
- :func:`rouge_l` is the mean over examples of the LCS F-measure with beta 1.2, taking the best
  precision and the best recall over the references;
- :func:`cider_d` is CIDEr-D: tf-idf n-gram vectors (n 1 to 4) with document frequencies from
  the references of this corpus, clipped similarity, a Gaussian length penalty (sigma 6) and
  a factor of 10. Like pycocoevalcap, the length it compares is the hypothesis's count of
  bigrams, and a corpus of one example has an idf of zero.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

Tokens = list[str]


def tokenize(text: str) -> Tokens:
    """Lower-case words and numbers; punctuation is dropped."""
    return _WORD.findall(text.lower().replace("’", "'"))


def _tokens(text: str | Sequence[str]) -> Tokens:
    return tokenize(text) if isinstance(text, str) else list(text)


def ngrams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """Counts of the n-grams of one length."""
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _all_ngrams(words: Sequence[str], most: int = 4) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for n in range(1, most + 1):
        counts.update(ngrams(words, n))
    return counts


def _check(hyps: Sequence[object], refs: Sequence[Sequence[object]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference sets; each "
                         f"example needs one of each.")
    for i, r in enumerate(refs):
        if not r:
            raise ValueError(f"Example {i + 1} has no reference sentence to compare with.")


# ----- BLEU ------------------------------------------------------------------------------------
TINY = 1e-15
SMALL = 1e-9


def bleu(hyps: Sequence[str | Sequence[str]], refs: Sequence[Sequence[str | Sequence[str]]],
         n: int = 4) -> float:
    """Corpus BLEU-n (default 4) of ``hyps`` against ``refs`` (several per example)."""
    _check(hyps, refs)
    guess = [0] * n
    correct = [0] * n
    test_len = ref_len = 0
    for hyp, ref_set in zip(hyps, refs, strict=True):
        words = _tokens(hyp)
        ref_words = [_tokens(r) for r in ref_set]
        test_len += len(words)
        # closest reference length; on a tie, the shorter one
        ref_len += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
        for k in range(1, n + 1):
            counts = ngrams(words, k)
            most: Counter[tuple[str, ...]] = Counter()
            for r in ref_words:
                for gram, c in ngrams(r, k).items():
                    most[gram] = max(most[gram], c)
            guess[k - 1] += max(len(words) - k + 1, 0)
            correct[k - 1] += sum(min(c, most[gram]) for gram, c in counts.items())
    score = 1.0
    for k in range(n):
        score *= (correct[k] + TINY) / (guess[k] + SMALL)
    score **= 1.0 / n
    ratio = (test_len + TINY) / (ref_len + SMALL)
    if ratio < 1:
        score *= math.exp(1 - 1 / ratio)
    return score


# ----- ROUGE-L ---------------------------------------------------------------------------------
BETA = 1.2


def lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b, start=1):
            row.append(previous[j - 1] + 1 if x == y else max(previous[j], row[j - 1]))
        previous = row
    return previous[-1]


def rouge_l_one(hyp: str | Sequence[str], ref_set: Sequence[str | Sequence[str]]) -> float:
    """ROUGE-L of one hypothesis against its references."""
    words = _tokens(hyp)
    precisions, recalls = [], []
    for ref in ref_set:
        r = _tokens(ref)
        common = lcs(words, r)
        precisions.append(common / len(words) if words else 0.0)
        recalls.append(common / len(r) if r else 0.0)
    p, rec = max(precisions), max(recalls)
    if p == 0 or rec == 0:
        return 0.0
    return (1 + BETA ** 2) * p * rec / (rec + BETA ** 2 * p)


def rouge_l(hyps: Sequence[str | Sequence[str]],
            refs: Sequence[Sequence[str | Sequence[str]]]) -> float:
    """Mean ROUGE-L over the examples."""
    _check(hyps, refs)
    if not hyps:
        return 0.0
    return sum(rouge_l_one(h, r) for h, r in zip(hyps, refs, strict=True)) / len(hyps)


# ----- CIDEr-D ---------------------------------------------------------------------------------
SIGMA = 6.0


def _vector(counts: Counter[tuple[str, ...]], df: Counter[tuple[str, ...]], log_n: float,
            n: int) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
    vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
    norm = [0.0] * n
    length = 0
    for gram, tf in counts.items():
        k = len(gram) - 1
        vec[k][gram] = tf * (log_n - math.log(max(1.0, df[gram])))
        norm[k] += vec[k][gram] ** 2
        if k == 1:  # pycocoevalcap counts bigrams as the length
            length += tf
    return vec, [math.sqrt(x) for x in norm], length


def cider_d_scores(hyps: Sequence[str | Sequence[str]],
                   refs: Sequence[Sequence[str | Sequence[str]]], n: int = 4) -> list[float]:
    """CIDEr-D of each example (document frequencies from all the references here)."""
    _check(hyps, refs)
    ref_counts = [[_all_ngrams(_tokens(r), n) for r in ref_set] for ref_set in refs]
    df: Counter[tuple[str, ...]] = Counter()
    for counts in ref_counts:
        df.update({gram for c in counts for gram in c})
    log_n = math.log(float(len(refs))) if refs else 0.0
    scores = []
    for hyp, counts in zip(hyps, ref_counts, strict=True):
        vh, nh, lh = _vector(_all_ngrams(_tokens(hyp), n), df, log_n, n)
        total = 0.0
        for c in counts:
            vr, nr, lr = _vector(c, df, log_n, n)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * SIGMA ** 2))
            for k in range(n):
                val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total += val * penalty / n
        scores.append(total / len(counts) * 10.0)
    return scores


def cider_d(hyps: Sequence[str | Sequence[str]],
            refs: Sequence[Sequence[str | Sequence[str]]]) -> float:
    """Mean CIDEr-D over the examples."""
    scores = cider_d_scores(hyps, refs)
    return sum(scores) / len(scores) if scores else 0.0


# ----- together --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaptionScores:
    """The three caption metrics of one narrator on one dataset."""

    bleu4: float
    rouge_l: float
    cider_d: float

    @property
    def quality(self) -> float:
        """One number to rank narrators by (0 to about 1): the mean of BLEU-4, ROUGE-L and
        CIDEr-D divided by 3 and capped at 1 (CIDEr-D of good captions is around 1 to 3)."""
        return (self.bleu4 + self.rouge_l + min(self.cider_d / 3.0, 1.0)) / 3.0


def caption_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> CaptionScores:
    """BLEU-4, ROUGE-L and CIDEr-D together."""
    tok_h = [tokenize(h) for h in hyps]
    tok_r = [[tokenize(r) for r in rs] for rs in refs]
    return CaptionScores(bleu(tok_h, tok_r), rouge_l(tok_h, tok_r), cider_d(tok_h, tok_r))
