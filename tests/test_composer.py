"""The composer writes audio-description sentences from observations."""

from __future__ import annotations

from models.composer import Composer, people_phrase
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
    assert "Mostly green and grey." in texts and "The camera pans left." in texts
    assert all(d.level == 3 for d in out)


def test_describe_now_summarises_the_latest_of_each_kind():
    obs = [people(9.5, person(1, "right", x0=0.7)),
           Observation(8.0, "text", "", data={"lines": ["EXIT"], "new": True}),
           Observation(9.5, "scene", "", data={"dark": False, "colours": ["blue"]})]
    assert Composer.describe(obs, 10.0) == ("A person standing on the right. Text on screen: "
                                            "EXIT. Mostly blue.")
    assert Composer.describe(obs, 30.0) == ""


def test_describe_now_forgets_text_from_before_the_last_cut():
    obs = [Observation(1.0, "text", "", data={"lines": ["TITLE"], "new": True}),
           Observation(4.0, "shot", "shot change"),
           people(5.5, person(1, "centre"))]
    assert Composer.describe(obs, 6.0) == "A person standing in the centre."
