"""The lab's caption metrics against hand-computed values and against the COCO caption
evaluation (pycocoevalcap 1.2's Bleu, Rouge and Cider, run on the same pre-tokenised corpus),
and the audio-description rules."""

from __future__ import annotations

import math

import pytest

from models.lab import metrics as m
from models.lab import rules

# A small corpus and the values pycocoevalcap 1.2 computes for it (Bleu(4) score[3], Rouge,
# Cider; fed these lower-case, punctuation-free sentences as its tokenizer would leave them).
CORPUS = [
    ("a person walks across the street and opens a red door",
     ["a person crosses the street and opens a red door",
      "someone walks over the road to a red door"]),
    ("two people sit at a table in a kitchen",
     ["two people sit at a table in a bright kitchen", "a man and a woman sit at a kitchen table"]),
    ("a dog runs on the beach",
     ["a dog runs along the beach as waves roll in", "a dog races across wet sand"]),
    ("the camera pans over a city at night",
     ["the camera pans over a city at night", "a city at night seen from above"]),
    ("text on screen reads chapter one", ["on screen the words chapter one appear"]),
]
PYCOCO_BLEU4 = 0.6778163095635144
PYCOCO_ROUGE_L = 0.8016065714822049
PYCOCO_CIDER_D = 4.151712957092075
PYCOCO_CIDER_EACH = [4.19930493, 5.42893241, 1.71528144, 6.87371439, 2.54133161]


def test_metrics_match_the_coco_caption_evaluation() -> None:
    hyps = [h for h, _ in CORPUS]
    refs = [r for _, r in CORPUS]
    assert m.bleu(hyps, refs) == pytest.approx(PYCOCO_BLEU4, abs=1e-12)
    assert m.rouge_l(hyps, refs) == pytest.approx(PYCOCO_ROUGE_L, abs=1e-12)
    assert m.cider_d(hyps, refs) == pytest.approx(PYCOCO_CIDER_D, abs=1e-9)
    assert m.cider_d_scores(hyps, refs) == pytest.approx(PYCOCO_CIDER_EACH, abs=1e-6)


def test_bleu_by_hand() -> None:
    # "the cat sat on the mat" against "the cat sat on a mat": clipped n-gram matches
    # 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty.
    expected = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert m.bleu(["The cat sat on the mat."], [["The cat sat on a mat."]]) == pytest.approx(
        expected, rel=1e-9)
    # every n-gram right but 4 words for a reference of 6: brevity penalty exp(1 - 6/4)
    assert m.bleu(["the cat sat on"], [["the cat sat on the mat"]]) == pytest.approx(
        math.exp(-0.5), rel=1e-9)
    # the closest reference length counts: 4 words against references of 4 and 9 words
    assert m.bleu(["the cat sat on"], [["the cat sat on", "x the cat sat on the mat y z"]]) \
        == pytest.approx(1.0, rel=1e-9)
    assert m.bleu(["a dog"], [["the cat sat on the mat"]]) < 1e-6


def test_rouge_l_by_hand() -> None:
    # LCS "the cat sat on mat" = 5 of 6 words each way: P = R = 5/6, so F = 5/6
    assert m.rouge_l(["the cat sat on the mat"], [["the cat sat on a mat"]]) == pytest.approx(5 / 6)
    # P = 2/2, R = 2/4: F = (1 + 1.44) * 1 * 0.5 / (0.5 + 1.44 * 1)
    assert m.rouge_l(["a dog"], [["a big dog runs"]]) == pytest.approx(2.44 * 0.5 / 1.94)
    # the best precision and the best recall over the references
    assert m.rouge_l_one("a dog", ["a dog runs", "cat"]) == pytest.approx(2.44 * (2 / 3) / (
        2 / 3 + 1.44))
    assert m.lcs("abcbdab", "bdcaba") == 4


def test_cider_d_by_hand() -> None:
    # Two examples with no n-gram in common: every n-gram's idf is log(2), a hypothesis equal
    # to its reference has cosine 1 for each n-gram length it has (1 and 2 for two words, 3
    # and 4 are empty), so CIDEr-D = 10 * (1 + 1 + 0 + 0) / 4 = 5.
    assert m.cider_d_scores(["a b", "c d"], [["a b"], ["c d"]]) == pytest.approx([5.0, 5.0])
    # four words: all four lengths match, 10
    assert m.cider_d(["w x y z", "c d e f"], [["w x y z"], ["c d e f"]]) == pytest.approx(10.0)
    # an n-gram every reference set has carries no weight (idf log(2) - log(2) = 0)
    assert m.cider_d_scores(["a"], [["a"]]) == [0.0]
    # clipping: saying a word more often than the reference does not earn more
    once = m.cider_d_scores(["dog runs", "cat"], [["dog runs"], ["cat sits"]])[0]
    twice = m.cider_d_scores(["dog dog runs", "cat"], [["dog runs"], ["cat sits"]])[0]
    assert twice < once


def test_tokenize_and_bad_input() -> None:
    assert m.tokenize("A man's hat, 2 DOGS!") == ["a", "man's", "hat", "2", "dogs"]
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference"):
        m.bleu(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="Example 1 has no reference"):
        m.rouge_l(["a"], [[]])
    scores = m.caption_scores([h for h, _ in CORPUS], [r for _, r in CORPUS])
    assert scores.bleu4 == pytest.approx(PYCOCO_BLEU4)
    assert scores.quality == pytest.approx((PYCOCO_BLEU4 + PYCOCO_ROUGE_L + 1.0) / 3)


@pytest.mark.parametrize("text, present, guesses_none", [
    ("A man walks to the door.", True, True),
    ("A man walked to the door.", False, True),
    ("He opened the box.", False, True),
    ("She was running.", False, True),
    ("A seated man reads a red book.", True, True),
    ("A woman, looking sad, sits down.", True, False),
    ("A man who looks like Tom Cruise runs.", True, False),
    ("The image shows a dog on a sofa.", True, False),
])
def test_rules(text: str, present: bool, guesses_none: bool) -> None:
    result = rules.check(text, pause=10.0)
    assert result.present_tense is present
    assert result.no_guesses is guesses_none
    assert result.fits_pause


def test_pause_rule_at_three_words_a_second() -> None:
    six = "A man walks to the door."
    assert rules.check(six, 2.0).fits_pause  # 6 words in 2 s
    assert not rules.check(six, 1.9).fits_pause
    assert rules.check(six, 1.9).problems == ["too long for its pause"]
    rates = rules.rates([six, "He opened the box.", "The image shows a dog."], [2.0, 2.0, 0.5])
    assert rates.present_tense == pytest.approx(2 / 3)
    assert rates.no_guesses == pytest.approx(2 / 3)
    assert rates.fits_pause == pytest.approx(2 / 3)
    assert rates.all_rules == pytest.approx(1 / 3)


def test_a_missing_library_is_an_install_hint() -> None:
    from models.lab import LabError, need

    with pytest.raises(LabError, match=r"needs no_such_lab_module, which is not installed: "
                                       r"pip install 'video-narrator\[lab\]'"):
        need("no_such_lab_module.sub")
    assert need("math") is math
