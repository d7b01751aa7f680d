"""The composer writes audio-description sentences from observations."""

from __future__ import annotations

from models.pipeline.composer import Composer, people_phrase
from models.types import Observation


def person(pid, position="left", posture="standing", gestures=(), x0=0.1, distance="middle"):
    return {"id": pid, "position": position, "posture": posture, "gestures": list(gestures),
            "box": [x0, 0.1, x0 + 0.2, 0.9], "distance": distance, "visibility": 0.9}


def people(t, *ps):
    return Observation(t, "people", f"{len(ps)} people", data={"count": len(ps),
                                                                "people": list(ps)})


def test_people_phrases_are_concrete_and_ordered_left_to_right():
    assert people_phrase([]) == "no one"
    assert people_phrase([person(1, "centre")]) == "a person standing in the centre"
    two = [person(2, "right", "sitting", x0=0.7), person(1, "left", x0=0.1)]
    assert people_phrase(two) == ("two people, one standing on the left and one sitting on "
                                  "the right")


def test_a_shot_change_gets_a_brief_high_priority_summary():
    c = Composer()
    out = c.feed([Observation(4.0, "shot", "shot change", data={"score": 0.9}),
                  people(4.0, person(1, "left"), person(2, "right", "sitting", x0=0.7))])
    assert [d.text for d in out] == [
        "New shot: two people, one standing on the left and one sitting on the right."]
    assert out[0].level == 1 and out[0].priority == 2 and out[0].source == "auto"


def test_text_is_read_verbatim_once():
    c = Composer()
    sign = Observation(2.0, "text", "MAIN STREET, Cyclists welcome",
                       data={"lines": ["MAIN STREET", "Cyclists welcome"], "new": True})
    out = c.feed([sign])
    assert out[0].text == "Text on screen: MAIN STREET, Cyclists welcome."
    again = Observation(3.0, "text", "", data={"lines": ["MAIN STREET", "Cyclists welcome"],
                                               "new": True})
    assert c.feed([again]) == []  # no repeat within the window


def test_text_ending_in_its_own_punctuation_gets_no_second_full_stop():
    c = Composer()
    out = c.feed([Observation(1.0, "text", "", data={"lines": ["STOP!"], "new": True}),
                  Observation(9.0, "text", "", data={"lines": ["Open daily."], "new": True})])
    assert [d.text for d in out] == ["Text on screen: STOP!", "Text on screen: Open daily."]


def test_a_cut_is_said_without_the_people_stage():
    """With pose detection off (its model failed to load) cuts are still said, with the faces
    when the face stage saw some."""
    c = Composer()
    out = c.feed([Observation(4.0, "shot", ""),
                  Observation(4.0, "faces", "", data={"count": 2}),
                  Observation(9.0, "shot", ""),
                  Observation(9.0, "scene", "", data={"colours": ["red"]})])
    texts = [d.text for d in out]
    assert texts[:2] == ["New shot: two faces in view.", "New shot."], texts
    assert out[0].level == 2 and out[0].priority == 1


def test_changes_are_said_not_what_stayed_the_same():
    c = Composer()
    c.feed([Observation(0.0, "shot", ""), people(0.0, person(1, "centre"))])
    assert c.feed([people(0.5, person(1, "centre"))]) == []
    out = c.feed([people(1.0, person(1, "centre", "sitting"))])
    assert [d.text for d in out] == ["The person sits down."]
    out = c.feed([people(1.5, person(1, "centre", "sitting", ["arms raised"]))])
    assert [d.text for d in out] == ["The person raises both arms."]


def test_a_new_person_must_be_seen_twice_before_it_is_said():
    c = Composer()
    c.feed([Observation(0.0, "shot", ""), people(0.0, person(1, "left"))])
    assert c.feed([people(0.5, person(1, "left"), person(2, "right", x0=0.7))]) == []
    out = c.feed([people(1.0, person(1, "left"), person(2, "right", x0=0.7))])
    assert [d.text for d in out] == ["Someone appears on the right."]
    # A one-frame flicker is not said.
    assert c.feed([people(1.5, person(1, "left"))]) == []
    assert c.feed([people(2.0, person(1, "left"), person(2, "right", x0=0.7))]) == []


def test_fades_darkness_colours_and_camera_motion():
    c = Composer()
    out = c.feed([Observation(5.0, "scene", "", data={"brightness": 0.02, "dark": True,
                                                      "fade": "to black", "colours": ["black"],
                                                      "motion": "still"})])
    assert [d.text for d in out] == ["The picture fades to black."]
    out = c.feed([Observation(6.0, "shot", ""),
                  Observation(6.0, "scene", "", data={"brightness": 0.6, "dark": False,
                                                      "fade": None,
                                                      "colours": ["green", "grey"],
                                                      "motion": "pan left"})])
    texts = [d.text for d in out]
    # Colours alone tell a listener nothing: they are not said.
    assert not any(t.startswith("Mostly") for t in texts) and "The camera pans left." not in texts
    assert texts[0] == "New shot."  # no people stage in this test
    assert all(d.level == 3 for d in out[1:])
    # The camera's movement is said once it holds for two samples within the shot, once.
    panning = [Observation(t, "scene", "", data={"brightness": 0.6, "colours": ["green"],
                                                 "motion": "pan left"}) for t in (6.5, 7.0, 7.5)]
    out = c.feed(panning)
    assert [(d.start, d.text) for d in out] == [(7.0, "The camera pans left.")]
    assert out[0].level == 3 and out[0].priority == 0
    # The frame after a cut does not count: two samples within the new shot are needed.
    tilt = [Observation(t, "scene", "", data={"motion": "tilt up"}) for t in (8.0, 8.5, 9.0)]
    out = c.feed([Observation(8.0, "shot", ""), *tilt])
    assert [(d.start, d.text) for d in out if "camera" in d.text] == [
        (9.0, "The camera tilts up.")]


def test_describe_now_summarises_the_latest_of_each_kind():
    obs = [people(9.5, person(1, "right", x0=0.7)),
           Observation(8.0, "text", "", data={"lines": ["EXIT"], "new": True}),
           Observation(9.5, "scene", "", data={"dark": False, "colours": ["blue"]})]
    assert Composer.describe(obs, 10.0) == ("A person standing on the right. Text on screen: "
                                            "EXIT.")
    assert Composer.describe(obs, 30.0) == ""


def test_describe_now_forgets_text_from_before_the_last_cut():
    obs = [Observation(1.0, "text", "", data={"lines": ["TITLE"], "new": True}),
           Observation(4.0, "shot", "shot change"),
           people(5.5, person(1, "centre"))]
    assert Composer.describe(obs, 6.0) == "A person standing in the centre."


# ----- people known by their stable ids ------------------------------------------------------

def shot(t, *ps):
    return [Observation(t, "shot", "shot change"), people(t, *ps)]


def texts(descriptions):
    return [d.text for d in descriptions]


def test_someone_known_who_comes_back_after_a_cut_is_back_not_new():
    c = Composer()
    assert texts(c.feed(shot(0.0, person(1, "left")))) == [
        "New shot: a person standing on the left."]
    assert texts(c.feed(shot(3.0, person(2, "right", "sitting", x0=0.7)))) == [
        "New shot: a person sitting on the right."]
    assert texts(c.feed(shot(6.0, person(1, "centre", x0=0.4)))) == [
        "The first person is back, in the centre."]
    assert texts(c.feed([people(6.5, person(1, "centre", "sitting", x0=0.4))])) == [
        "The first person sits down."]
    # Cut to both: the first person was in view before the cut, so only named.
    assert texts(c.feed(shot(9.0, person(2, "right", x0=0.7), person(1, "left")))) == [
        "New shot: the first person on the left and the second person on the right."]
    c.feed(shot(10.0))
    assert texts(c.feed(shot(11.0, person(2, "right", x0=0.7), person(1, "left")))) == [
        "The first person on the left and the second person on the right are back."]
    # Someone new with someone known.
    assert texts(c.feed(shot(12.0, person(3, "left"), person(2, "right", x0=0.7)))) == [
        "New shot: a person standing on the left and the second person on the right."]
    out = c.feed([people(12.5, person(3, "left"), person(2, "right", "standing", ["waving"],
                                                         x0=0.7))])
    assert texts(out) == ["The second person, on the right, waves."]


def test_sentences_that_name_known_people_carry_a_plain_version():
    """For a listener who missed someone's introduction the narrator says the plain version:
    each sentence says whom it introduces and whom it names as known."""
    c = Composer()
    (first,) = c.feed(shot(0.0, person(1, "left")))
    assert first.introduces == (1,) and first.refers == () and first.plain == ""
    c.feed(shot(3.0, person(2, "right", "sitting", x0=0.7)))
    (back,) = c.feed(shot(6.0, person(1, "centre", x0=0.4)))
    assert back.text == "The first person is back, in the centre."
    assert back.refers == (1,) and back.plain == "New shot: a person standing in the centre."
    (sits,) = c.feed([people(6.5, person(1, "centre", "sitting", x0=0.4))])
    assert (sits.refers, sits.plain) == ((1,), "A person sits down.")
    (mixed,) = c.feed(shot(12.0, person(3, "left"), person(2, "right", x0=0.7)))
    assert mixed.refers == (2,) and mixed.introduces == (3,)
    assert mixed.plain == ("New shot: two people, one standing on the left and one standing on "
                           "the right.")
    c.name_person(2, "the man in the red coat")
    (waves,) = c.feed([people(12.5, person(3, "left"),
                              person(2, "right", "standing", ["waving"], x0=0.7))])
    assert waves.text == "The man in the red coat, on the right, waves."
    assert waves.plain == "A man in the red coat on the right waves."


def test_a_lone_person_leaving_and_coming_back_without_a_cut():
    c = Composer()
    c.feed(shot(0.0, person(1, "left")))
    assert c.feed([people(0.5)]) == []  # one sample is not enough
    assert texts(c.feed([people(1.0)])) == ["Now no one is in view."]
    assert c.feed([people(5.0, person(1, "right", x0=0.7))]) == []
    assert texts(c.feed([people(5.5, person(1, "right", x0=0.7))])) == [
        "The person is back, on the right."]
    # A second person arrives, then the first goes out of view.
    c.feed([people(6.0, person(1, "right", x0=0.7), person(2, "left"))])
    assert texts(c.feed([people(6.5, person(1, "right", x0=0.7), person(2, "left"))])) == [
        "Someone appears on the left."]
    c.feed([people(7.0, person(2, "left"))])
    (gone,) = c.feed([people(7.5, person(2, "left"))])
    assert gone.text == "The first person is out of view."
    # For a listener who never met the first person, the plain version says who left.
    assert (gone.refers, gone.plain) == ((1,), "A person standing on the right is out of view.")


def test_name_person_accepts_short_plain_labels():
    c = Composer()
    assert c.name_person(1, "The man with glasses.")
    assert c.label_of(1) == "the man with glasses"
    assert c.name_person(2, "woman in the red coat")  # the article is added
    assert c.label_of(2) == "the woman in the red coat"
    assert c.name_person(3, "A person with a blue backpack")
    assert c.label_of(3) == "the person with a blue backpack"
    assert c.name_person(4, "The image shows a cyclist in a helmet.")  # framing is cleaned
    assert c.label_of(4) == "the cyclist in a helmet"
    assert c.name_person(1, "the man in the grey suit")  # a better label replaces the old one
    assert c.label_of(1) == "the man in the grey suit"


def test_name_person_refuses_names_feelings_guesses_and_long_answers():
    c = Composer()
    refused = [
        "", "   ", "...",
        "John Smith",
        "the man named John",
        "the woman from NASA",
        "The Man With Glasses",
        "the happy woman",
        "the angry man in red",
        "the famous actor",
        "the man who resembles a singer",
        "the man in his thirties",
        "a 40-year-old man",
        "the first person",
        "the person",
        "the man with the red hat and the long grey coat",
        "the man, smiling",
        "I cannot tell who this is.",
        "the man (probably a doctor)",
        "A man, possibly Tom Hanks.",
        "the man who looks like a pilot",
        "the woman on the left",
    ]
    for label in refused:
        assert c.name_person(1, label) is False, label
        assert c.label_of(1) == "", label
    assert c.name_person(1, "the man with glasses")
    assert c.name_person(2, "The man with glasses.") is False  # already someone else's
    assert c.label_of(2) == ""


def test_sentences_use_the_label_from_then_on():
    c = Composer()
    c.feed(shot(0.0, person(1, "left"), person(2, "right", x0=0.7)))
    assert c.name_person(2, "the woman in the red coat")
    out = c.feed([people(0.5, person(1, "left"), person(2, "right", "sitting", x0=0.7))])
    assert texts(out) == ["The woman in the red coat, on the right, sits down."]
    c.feed(shot(4.0, person(3, "centre", x0=0.4)))
    assert texts(c.feed(shot(8.0, person(2, "centre", x0=0.4)))) == [
        "The woman in the red coat is back, in the centre."]
    # A label given before a person is first described: "a", not "the".
    assert c.name_person(5, "the man with a dog")
    assert texts(c.feed(shot(12.0, person(5, "left"), person(1, "right", x0=0.7)))) == [
        "New shot: a man with a dog standing on the left and the first person on the right."]
    c.reset()
    assert c.label_of(2) == ""


def test_describe_now_calls_labelled_people_by_their_label() -> None:
    one = [{"id": 1, "position": "left", "distance": "middle", "posture": "standing",
            "gestures": [], "box": [0.1, 0.2, 0.3, 0.9]}]
    two = one + [{"id": 2, "position": "right", "distance": "middle", "posture": "sitting",
                  "gestures": [], "box": [0.6, 0.3, 0.8, 0.9]}]
    c = Composer()
    assert c.name_person(1, "The man in the red coat.")
    obs = [Observation(1.0, "people", "1 person", data={"count": 1, "people": one})]
    said = Composer.describe(obs, 1.0, 2, c.labels)
    assert said.startswith("The man in the red coat standing on the left"), said
    assert Composer.describe(obs, 1.0, 2).startswith("A person standing on the left")
    both = [Observation(1.0, "people", "2 people", data={"count": 2, "people": two})]
    said = Composer.describe(both, 1.0, 2, c.labels)
    assert "the man in the red coat, standing on the left" in said, said
    assert "one sitting on the right" in said, said


# ----- many people: only the first few are numbered -------------------------------------------

def dressed(pid, position="left", clothes="", x0=0.1, **kw):
    """A person whose clothes the people stage saw as ``clothes`` ("red"; "" unclear)."""
    return person(pid, position, x0=x0, **kw) | ({"clothes": clothes} if clothes else {})


def pedestrians(minutes: float = 20.0, seed: int = 7) -> list[Observation]:
    """A street scene: shots of a few seconds, up to four people a shot from some fifty
    passers-by, a third of them seen again later, people walking in and out of the picture,
    stopping, sitting, waving; sampled twice a second."""
    import random

    rng = random.Random(seed)
    colours = ["red", "blue", "black", "white", "green", "yellow", "grey", "", "", ""]
    clothes = {pid: rng.choice(colours) for pid in range(1, 60)}
    seen: list[int] = []
    fresh = iter(range(1, 60))
    places = [("left", 0.05), ("centre", 0.4), ("right", 0.75)]
    obs: list[Observation] = []
    cast: list[int] = []
    state: dict[int, dict] = {}

    def enter() -> None:
        """Someone comes into the picture: a third of the time someone seen before."""
        back = [pid for pid in seen if pid not in cast]
        pid = rng.choice(back) if back and rng.random() < 0.35 else next(fresh, None)
        if pid is not None:
            cast.append(pid)
            seen.extend([pid] if pid not in seen else [])
            state[pid] = {"posture": "standing", "gestures": []}

    t, end = 0.0, minutes * 60
    while t < end:
        cast.clear()
        for _ in range(rng.randint(0, 3)):
            enter()
        shot_end = t + rng.uniform(4.0, 20.0)
        obs.append(Observation(t, "shot", "shot change"))
        while t < shot_end and t < end:
            if rng.random() < 0.04 and len(cast) < 4:  # someone walks in (and stays a while)
                enter()
            elif rng.random() < 0.03 and cast:  # someone walks out
                cast.remove(rng.choice(cast))
            for pid in cast:
                if rng.random() < 0.05:
                    state[pid]["posture"] = rng.choice(["standing", "sitting"])
                if rng.random() < 0.05:
                    state[pid]["gestures"] = rng.choice([[], ["waving"], ["pointing"]])
            ps = [dressed(pid, *places[i % 3][:1], clothes=clothes[pid],
                          x0=places[i % 3][1] + 0.05 * (i // 3), **state[pid])
                  for i, pid in enumerate(cast)]
            obs.append(people(t, *ps))
            t = round(t + 0.5, 1)
    return obs


def test_only_the_first_three_people_are_numbered_in_a_long_street_scene():
    """Twenty minutes of passers-by once gave "Person number 31 is back" and "The sixteenth
    person is back": a listener cannot hold that many. After the third, people are named by
    what can be seen or not named at all."""
    import re

    from models.pipeline.composer import ORDINAL_PEOPLE, ORDINALS

    c = Composer()
    said = c.feed(pedestrians())
    spoken = [text for d in said for text in (d.text, d.plain) if text]
    too_far = ORDINALS[ORDINAL_PEOPLE:]
    for text in spoken:
        assert "number" not in text and not re.search(r"\d", text), text
        assert not any(re.search(rf"\b{word}\b", text, re.IGNORECASE) for word in too_far), text
    ordinals = {m.group(1).lower() for text in spoken
                for m in re.finditer(r"\b(\w+) person\b", text) if m.group(1).lower() in ORDINALS}
    assert ordinals == {"first", "second", "third"}
    # Those after the third who are referred to as known have a name a listener can hold:
    # the colour of their clothes.
    first_three = {pid for pid, order in c._ordinal.items() if order < ORDINAL_PEOPLE}
    later = [d for d in said if set(d.refers) - first_three]
    assert later, "the scene never brings a later person back"
    for d in later:
        assert "the person in " in d.text.lower(), d
    # Later people without a clear colour are described, never said to be back.
    plainly = [d.text for d in said if d.introduces and set(d.introduces) - first_three]
    assert any(text.startswith(("Someone appears", "New shot: a person")) for text in plainly)
    assert len(c._ordinal) > 30  # the scene really has that many people


def test_people_after_the_third_are_named_by_their_clothes_or_plainly():
    c = Composer()
    for i, pid in enumerate((1, 2, 3)):
        c.feed(shot(20.0 * i, person(pid, "left")))
    out = c.feed(shot(60.0, dressed(4, "centre", "red", x0=0.4)))
    assert texts(out) == ["New shot: a person in red standing in the centre."]
    assert out[0].introduces == (4,)
    out = c.feed(shot(80.0, person(5, "right", x0=0.7)))
    assert texts(out) == ["New shot: a person standing on the right."]
    # The person in red is back; the fifth person, who has no name, is simply there again.
    (back,) = c.feed(shot(100.0, dressed(4, "left", "red")))
    assert back.text == "The person in red is back, on the left."
    assert (back.refers, back.plain) == ((4,), "New shot: a person in red standing on the left.")
    (again,) = c.feed(shot(120.0, person(5, "centre", x0=0.4)))
    assert (again.text, again.refers) == ("New shot: a person standing in the centre.", ())
    (sits,) = c.feed([people(120.5, person(5, "centre", "sitting", x0=0.4))])
    assert (sits.text, sits.refers, sits.plain) == ("The person sits down.", (), "")
    # With others in view, someone without a name is said by where they are.
    c.feed(shot(140.0, dressed(4, "left", "red"), person(5, "right", "sitting", x0=0.7)))
    out = c.feed([people(140.5, dressed(4, "left", "red", gestures=["waving"]),
                         person(5, "right", "standing", x0=0.7))])
    assert texts(out) == ["The person in red, on the left, waves.",
                          "Someone on the right stands up."]
    # Someone unnamed walking in appears; the first three keep their numbers.
    c.feed([people(141.0, dressed(4, "left", "red"), person(5, "right", x0=0.7),
                   person(1, "centre", x0=0.4))])
    (arrive,) = c.feed([people(141.5, dressed(4, "left", "red"), person(5, "right", x0=0.7),
                                person(1, "centre", x0=0.4))])
    assert arrive.text == "The first person is back, in the centre."
    c.feed([people(142.0, dressed(4, "left", "red"), person(1, "centre", x0=0.4))])
    c.feed([people(142.5, dressed(4, "left", "red"), person(1, "centre", x0=0.4))])
    c.feed([people(143.0, dressed(4, "left", "red"), person(1, "centre", x0=0.4),
                   person(5, "right", x0=0.7))])
    (arrive,) = c.feed([people(143.5, dressed(4, "left", "red"), person(1, "centre", x0=0.4),
                                person(5, "right", x0=0.7))])
    assert (arrive.text, arrive.refers) == ("Someone appears on the right.", ())


def test_a_look_names_one_person_and_passes_on_after_a_long_absence():
    from models.pipeline.composer import LOOK_KEPT

    c = Composer()
    for i, pid in enumerate((1, 2, 3)):
        c.feed(shot(2.0 * i, person(pid, "left")))
    # Two people in red at once: only the first is "the person in red".
    out = c.feed(shot(10.0, dressed(4, "left", "red"), dressed(5, "right", "red", x0=0.7)))
    assert texts(out) == ["New shot: two people, a person in red, standing on the left and one "
                          "standing on the right."]
    c.feed(shot(20.0))
    (both,) = c.feed(shot(25.0, dressed(4, "left", "red"), dressed(5, "right", "red", x0=0.7)))
    assert both.text == ("New shot: the person in red on the left and a person standing on the "
                         "right.")
    # A model's label cannot take a name someone already has.
    assert not c.name_person(6, "the person in red")
    # Long after the person in red was last seen, someone new in red takes the name.
    later = 25.0 + LOOK_KEPT + 1
    out = c.feed(shot(later, dressed(7, "centre", "red", x0=0.4)))
    assert texts(out) == ["New shot: a person in red standing in the centre."]
    c.feed(shot(later + 10))
    (back,) = c.feed(shot(later + 20, dressed(7, "left", "red")))
    assert back.text == "The person in red is back, on the left."
    # The first holder has no name now: they are described, not said to be back.
    (old,) = c.feed(shot(later + 40, dressed(4, "right", "red", x0=0.7)))
    assert (old.text, old.refers) == ("New shot: a person standing on the right.", ())
    # A seek keeps the looks.
    c.rewind()
    (back,) = c.feed(shot(later + 50, dressed(7, "centre", "red", x0=0.4)))
    assert back.text == "The person in red is back, in the centre."
