"""Short answers: each sentence once, no more than a short answer holds."""

from models.brief import brief


def test_a_sentence_is_said_once():
    assert brief("Mostly grey and black. No people in view. Mostly grey and black.") == \
        "Mostly grey and black. No people in view."


def test_whole_sentences_within_the_word_budget():
    text = "One person stands on the left. Text on screen: EXIT. The camera pans right."
    assert brief(text, 8) == "One person stands on the left."
    assert brief(text, 11) == "One person stands on the left. Text on screen: EXIT."
    assert brief("A very long first sentence that goes on and on and on.", 3) == \
        "A very long first sentence that goes on and on and on."  # the first is always kept
    assert brief("") == ""


def test_counts_are_said_in_the_singular_for_one():
    from models.wording import counted

    assert counted(1, "description") == "1 description"
    assert counted(0, "description") == "0 descriptions"
    assert counted(2, "more problem") == "2 more problems"
    assert counted(1, "person", "people") == "1 person" and counted(3, "person", "people") == \
        "3 people"
