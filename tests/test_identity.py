"""Knowing people again: appearance signatures, the gallery, and stable ids through the people
and face stages, on real people (the demo clip's man in the car and cyclist, and the portrait of
Grace Hopper that matplotlib ships as sample data)."""

from __future__ import annotations

import statistics
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from models.perception.identity import (
    Identities,
    IdentityOptions,
    Signature,
    body_regions,
    clothing_colour,
    signature,
    similarity,
)
from models.pipeline.composer import Composer
from models.types import Observation
from tests import people_media as media

pytest.importorskip("mediapipe", reason="the perception extra is not installed")

from models.perception.faces import FaceStage, as_rgb  # noqa: E402
from models.perception.pose import PoseStage  # noqa: E402

OPTIONS = IdentityOptions()


# ---------------------------------------------------------------------------------------------
# Pictures


def recoloured(crop: np.ndarray, rgb: tuple[int, int, int] = (40, 70, 200)) -> np.ndarray:
    """The same picture with its dark clothes (and other dark parts) dyed ``rgb``: the same body
    and pose in visibly different clothes."""
    import cv2

    dark = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)[:, :, 2] < 70
    shade = np.clip(crop.max(axis=2, keepdims=True) / 70.0, 0.15, 1.0)
    dyed = np.array(rgb, np.float32)[None, None, :] * shade
    return np.where(dark[:, :, None], dyed, crop).astype(np.uint8)


def lit(picture: np.ndarray, gain: float = 1.0,
        tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The picture under dimmer or brighter, warmer or cooler light."""
    scaled = picture.astype(np.float32) * gain * np.array(tint, np.float32)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def grace_hopper() -> np.ndarray:
    """A real portrait (head and shoulders, navy uniform) from matplotlib's sample data."""
    cbook = pytest.importorskip("matplotlib.cbook", reason="matplotlib comes with mediapipe")
    import cv2

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def on_canvas(crop: np.ndarray, x: float, height: int = 300,
              background: tuple[int, int, int] | None = None) -> np.ndarray:
    """``crop`` standing in an empty light grey picture (or one of ``background`` colour)."""
    picture = media.canvas() if background is None else \
        np.full((360, 640, 3), background, np.uint8)
    return media.place(picture, crop, x, height)


BEIGE, NAVY = (150, 120, 90), (60, 80, 140)


@pytest.fixture(scope="module")
def pose() -> PoseStage:
    stage = PoseStage()
    assert stage.problem() == ""
    return stage


@pytest.fixture(scope="module")
def sig(pose: PoseStage):
    """The signature of the tallest person the pose model finds in a picture."""

    def make(picture: np.ndarray) -> Signature:
        rgb = as_rgb(picture, pose.options.max_side)
        h, w = rgb.shape[:2]
        people = pose._people(rgb)
        assert people, "the pose model found no one"
        person = max(people, key=lambda p: p.box[3] - p.box[1])
        return signature(rgb, body_regions(person.landmarks, person.box, w, h))

    return make


# ---------------------------------------------------------------------------------------------
# Signatures and thresholds


def test_the_same_person_matches_across_a_scene_places_and_light(sig) -> None:
    car = sig(media.frame_at(5.0))
    again = [media.frame_at(t) for t in (7.0, 9.0, 11.0, 13.0, 15.0)]  # he talks and moves
    again += [lit(media.frame_at(6.0), 0.75), lit(media.frame_at(9.0), 1.2),
              lit(media.frame_at(12.0), tint=(0.95, 1.0, 1.05)),
              lit(media.frame_at(12.0), tint=(1.05, 1.0, 0.95)),
              on_canvas(media.car_man(), 0.7, 250), on_canvas(media.car_man(), 0.4, 300, BEIGE)]
    scores = [similarity(car, sig(p)) for p in again]
    assert min(scores) >= OPTIONS.match, scores

    cyclist = sig(on_canvas(media.cyclist(), 0.3))
    again = [media.frame_at(19.93), media.frame_at(20.6),  # the street, in the film itself
             on_canvas(media.cyclist(), 0.8, 200),
             lit(on_canvas(media.cyclist(), 0.5), 0.75),
             lit(on_canvas(media.cyclist(), 0.5), 1.2),
             lit(on_canvas(media.cyclist(), 0.5), tint=(1.05, 1.0, 0.95)),
             on_canvas(media.cyclist(), 0.5, 300, NAVY)]
    scores = [similarity(cyclist, sig(p)) for p in again]
    assert min(scores) >= OPTIONS.match, scores

    grace = sig(on_canvas(grace_hopper(), 0.7))
    again = [grace_hopper(), lit(grace_hopper(), 0.8), on_canvas(grace_hopper()[:, ::-1], 0.3, 200),
             on_canvas(grace_hopper(), 0.6, 300, BEIGE)]
    scores = [similarity(grace, sig(p)) for p in again]
    assert min(scores) >= OPTIONS.match, scores


def test_different_people_and_different_clothes_do_not_match(sig) -> None:
    people = {
        "car": sig(media.frame_at(5.0)),
        "cyclist": sig(on_canvas(media.cyclist(), 0.3)),
        "grace": sig(on_canvas(grace_hopper(), 0.7)),  # dark clothes too
        "cyclist in blue": sig(on_canvas(recoloured(media.cyclist()), 0.5)),
        "cyclist in red": sig(on_canvas(recoloured(media.cyclist(), (170, 30, 30)), 0.5)),
        "car man in green": sig(on_canvas(recoloured(media.car_man(), (30, 120, 40)), 0.5)),
    }
    names = list(people)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            score = similarity(people[a], people[b])
            assert score < OPTIONS.match - 0.05, (a, b, score)
    # New clothes on the same body are far enough apart to split a track.
    assert similarity(people["cyclist"], people["cyclist in blue"]) < OPTIONS.split
    assert similarity(people["car"], people["car man in green"]) < OPTIONS.split


def test_a_signature_costs_well_under_a_millisecond(pose: PoseStage) -> None:
    rgb = as_rgb(media.frame_at(5.0), pose.options.max_side)
    h, w = rgb.shape[:2]
    [person] = pose._people(rgb)
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(50):
            signature(rgb, body_regions(person.landmarks, person.box, w, h))
        runs.append((time.perf_counter() - t0) / 50)
    per_person = statistics.median(runs)
    print(f"signature: {per_person * 1000:.3f} ms per person")
    assert per_person < 0.001


# ---------------------------------------------------------------------------------------------
# The gallery


def test_a_person_gets_their_id_back_after_a_cut_and_an_absence(sig) -> None:
    cyclist = sig(on_canvas(media.cyclist(), 0.2))
    car = sig(media.frame_at(5.0))
    ids = Identities()
    first = [ids.assign(t, [(1, cyclist)]) for t in (0.0, 0.5, 1.0)]
    assert [a[0].id for a in first] == [1, 1, 1]
    assert [a[0].new for a in first] == [True, False, False]
    # A cut to the man in the car: the tracker starts new tracks.
    ids.drop_tracks()
    [man] = ids.assign(2.0, [(7, car)])
    assert (man.id, man.new) == (2, True)
    # Two minutes later the cyclist is back, smaller and on the other side, on a new track.
    ids.drop_tracks()
    [back] = ids.assign(120.0, [(9, sig(on_canvas(media.cyclist(), 0.8, 220)))])
    assert (back.id, back.new) == (1, False)
    assert back.similarity is not None and back.similarity >= OPTIONS.match
    [man] = ids.assign(121.0, [(10, sig(media.frame_at(12.0)))])
    assert (man.id, man.new) == (2, False)


def test_people_in_one_frame_never_share_an_id_and_close_calls_are_new(sig) -> None:
    man = sig(media.frame_at(5.0))
    twin = sig(media.frame_at(5.5))
    ids = Identities()
    pair = ids.assign(0.0, [(1, man), (2, twin)])
    assert [a.id for a in pair] == [1, 2]  # alike, but side by side: two people
    ids.drop_tracks()
    # One of them comes back: both match, neither by the margin, so no guess is made.
    [back] = ids.assign(5.0, [(3, sig(media.frame_at(8.0)))])
    assert (back.id, back.new) == (3, True)


def test_one_person_known_twice_is_still_known(sig) -> None:
    ids = Identities(IdentityOptions(match=0.999))  # so strict that a second sighting is new
    assert ids.assign(0.0, [(1, sig(media.frame_at(5.0)))])[0].id == 1
    ids.drop_tracks()
    assert ids.assign(1.0, [(2, sig(media.frame_at(5.5)))])[0].id == 2
    ids.options.match = OPTIONS.match
    ids.drop_tracks()
    # Both entries match and neither by the margin, but they are alike and were never seen
    # together: one person known twice, not a stranger.
    [back] = ids.assign(5.0, [(3, sig(media.frame_at(8.0)))])
    assert back.id in (1, 2) and back.new is False


def test_someone_else_on_the_same_track_is_split_off(sig) -> None:
    ids = Identities()
    cyclist = sig(on_canvas(media.cyclist(), 0.5))
    assert ids.assign(0.0, [(1, cyclist)])[0].id == 1
    # The tracker links the box (same place) but the clothes are not his.
    [other] = ids.assign(0.5, [(1, sig(on_canvas(recoloured(media.cyclist()), 0.5)))])
    assert (other.id, other.new) == (2, True)
    [again] = ids.assign(1.0, [(1, cyclist)])
    assert (again.id, again.new) == (1, False)


def test_the_gallery_is_bounded_and_forgets(sig) -> None:
    car, cyclist = sig(media.frame_at(5.0)), sig(on_canvas(media.cyclist(), 0.5))
    ids = Identities(IdentityOptions(forget_after=60.0, max_people=2))
    assert ids.assign(0.0, [(1, car)])[0].id == 1
    ids.drop_tracks()
    assert ids.assign(59.0, [(2, car)])[0].new is False  # seen 59 s later: still known
    ids.drop_tracks()
    [car_again] = ids.assign(200.0, [(3, car)])  # more than a minute unseen: forgotten
    assert (car_again.id, car_again.new) == (2, True)
    # More people than the gallery holds: the least recently seen goes first.
    grace = sig(on_canvas(grace_hopper(), 0.5))
    for t, track, person in ((201.0, 4, cyclist), (202.0, 5, grace)):
        ids.drop_tracks()
        ids.assign(t, [(track, person)])
        assert len(ids.people) <= 2
    assert {p.id for p in ids.people} == {3, 4}
    ids.reset()
    assert ids.people == () and ids.assign(0.0, [(1, car)])[0].id == 1


def test_clothes_get_a_colour_word_only_when_one_colour_clearly_holds(sig) -> None:
    """The word that lets the narration say "the person in red": the same under dimmer,
    brighter or warmer light; none for clothes of several colours or between two words."""
    red, blue = recoloured(media.cyclist(), (170, 30, 30)), recoloured(media.cyclist())
    pictures = {
        "black": [on_canvas(media.cyclist(), 0.3), lit(on_canvas(media.cyclist(), 0.5), 0.75),
                  lit(on_canvas(media.cyclist(), 0.5), tint=(1.05, 1.0, 0.95)),
                  media.frame_at(19.93)],  # the cyclist in the film itself
        "red": [on_canvas(red, 0.5), lit(on_canvas(red, 0.5), 0.75)],
        "blue": [on_canvas(blue, 0.5), lit(on_canvas(blue, 0.5), 1.2)],
        "green": [on_canvas(recoloured(media.car_man(), (30, 120, 40)), 0.5)],
        # A suit over a white shirt with a bow tie; a dark slate blue, between blue and black.
        "": [media.frame_at(5.0), lit(media.frame_at(9.0), 1.2),
             on_canvas(recoloured(media.cyclist(), (50, 60, 80)), 0.5, 300, BEIGE)],
    }
    for word, shown in pictures.items():
        assert [clothing_colour(sig(p)) for p in shown] == [word] * len(shown), word
    assert clothing_colour(None) == ""
    # Stripes of two colours, and a colour between orange and yellow (which the light decides).
    stripes = np.zeros((90, 90, 3), np.uint8)
    stripes[::2], stripes[1::2] = (200, 30, 30), (40, 70, 200)
    amber = np.full((90, 90, 3), (230, 170, 30), np.uint8)
    for picture in (stripes, amber):
        assert clothing_colour(signature(picture, {"torso": (5, 5, 85, 85)})) == ""
    # The gallery says it for a known person, from every sighting so far.
    ids = Identities()
    [a] = ids.assign(0.0, [(1, sig(on_canvas(red, 0.5)))])
    ids.assign(0.5, [(1, sig(lit(on_canvas(red, 0.5), 0.75)))])
    assert ids.clothing_colour(a.id) == "red" and ids.clothing_colour(99) == ""


# ---------------------------------------------------------------------------------------------
# Through the stages


def people_of(stage: PoseStage, t: float, frame: np.ndarray) -> list[dict]:
    [obs] = stage.process(t, frame)
    return obs.data["people"]


def test_the_pose_stage_knows_the_cyclist_again_after_a_cut(pose: PoseStage) -> None:
    pose.reset()
    seen: list[tuple[float, dict]] = []
    for t in (0.0, 0.5, 1.0):
        seen += [(t, p) for p in people_of(pose, t, on_canvas(media.cyclist(), 0.2))]
    for t, frame in media.frames(5.0, 6.5)[::7]:  # cut: the man in the car (the film's frames)
        shown = media.place(media.canvas(), frame, 0.5, 360)
        seen += [(2.0 + t - 5.0, p) for p in people_of(pose, 2.0 + t - 5.0, shown)]
    for t in (4.0, 4.5, 5.0):  # cut: the cyclist again, on the right and smaller
        seen += [(t, p) for p in people_of(pose, t, on_canvas(media.cyclist(), 0.8, 220))]
    ids = [(t, p["id"], p["new"]) for t, p in seen]
    assert [i for t, i, _ in ids if t < 2] == [1, 1, 1]
    assert {i for t, i, _ in ids if 2 <= t < 4} == {2}
    assert [i for t, i, _ in ids if t >= 4] == [1, 1, 1]
    assert [t for t, _, new in ids if new] == [0.0, 2.0]  # "new" once per person
    assert all(len(p["box"]) == 4 for _, p in seen)


def test_someone_in_other_clothes_in_the_same_place_is_someone_else(pose: PoseStage) -> None:
    pose.reset()
    black = [people_of(pose, t, on_canvas(media.cyclist(), 0.5)) for t in (0.0, 0.5)]
    blue = [people_of(pose, t, on_canvas(recoloured(media.cyclist()), 0.5)) for t in (1.0, 1.5)]
    back = people_of(pose, 2.0, on_canvas(media.cyclist(), 0.5))
    assert [p[0]["id"] for p in black] == [1, 1]
    assert [p[0]["id"] for p in blue] == [2, 2] and blue[0][0]["new"] is True
    assert back[0]["id"] == 1 and back[0]["new"] is False


def test_a_cut_to_someone_dressed_alike_in_the_same_place_is_someone_else(
        pose: PoseStage) -> None:
    """Close enough in colour for a moving track to go on, but after a cut appearance alone
    decides, and it is not close enough to be the same person."""
    pose.reset()
    alike = recoloured(media.cyclist(), (50, 60, 80))  # dark slate blue, not black
    before = [people_of(pose, t, on_canvas(media.cyclist(), 0.5)) for t in (0.0, 0.5)]
    after = [people_of(pose, t, on_canvas(alike, 0.5, 300, BEIGE)) for t in (1.0, 1.5)]
    assert [p[0]["id"] for p in before] == [1, 1]
    assert [p[0]["id"] for p in after] == [2, 2]


def test_the_man_in_the_car_comes_back_after_the_street(pose: PoseStage) -> None:
    """Real cuts of the demo film rearranged: the car, the street, the car again."""
    pose.reset()
    car = [p for t, f in media.frames(5.0, 6.0)[::5] for p in people_of(pose, t, f)]
    street = [p for t, f in media.frames(19.9, 21.0)[::3] for p in people_of(pose, t + 2, f)]
    again = [p for t, f in media.frames(11.0, 12.0)[::5] for p in people_of(pose, t + 20, f)]
    assert car and street and again
    assert {p["id"] for p in car} == {1}
    assert 1 not in {p["id"] for p in street}
    assert {p["id"] for p in again} == {1} and not any(p["new"] for p in again)


def test_an_earlier_frame_keeps_the_people_and_reset_forgets_them(pose: PoseStage) -> None:
    pose.reset()
    people_of(pose, 10.0, on_canvas(media.cyclist(), 0.3))
    people_of(pose, 12.0, on_canvas(media.car_man(), 0.7))
    # "Describe now" sends the frame on screen, earlier than the look-ahead.
    [now] = people_of(pose, 4.0, on_canvas(media.cyclist(), 0.6))
    assert (now["id"], now["new"]) == (1, False)
    [later] = people_of(pose, 12.5, on_canvas(media.car_man(), 0.7))
    assert (later["id"], later["new"]) == (2, False)
    pose.reset()
    [fresh] = people_of(pose, 0.0, on_canvas(media.car_man(), 0.7))
    assert (fresh["id"], fresh["new"]) == (1, True)


def test_a_face_keeps_its_id_through_an_absence() -> None:
    faces = FaceStage()
    assert faces.problem() == ""

    def face_ids(t: float, frame: np.ndarray) -> list[tuple[int, bool]]:
        [obs] = faces.process(t, frame)
        return [(f["id"], f["new"]) for f in obs.data["faces"]]

    assert face_ids(0.0, media.frame_at(5.0)) == [(1, True)]
    for t in (0.5, 1.0, 1.5, 2.0):
        assert face_ids(t, media.canvas()) == []
    assert face_ids(2.5, media.frame_at(12.0)) == [(1, False)]
    assert face_ids(3.0, on_canvas(grace_hopper(), 0.5, 340)) == [(2, True)]  # someone else
    assert face_ids(3.5, media.frame_at(13.0)) == [(1, False)]
    faces.reset()
    assert face_ids(0.0, media.frame_at(12.0)) == [(1, True)]


# ---------------------------------------------------------------------------------------------
# A film: shots, people and the composer together


def write_film(path: Path, shots: list[list[np.ndarray]], fps: int = 10) -> Path:
    """An H.264 film of ``shots``, each a list of pictures held for a second each."""
    import av

    h, w = shots[0][0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for shot in shots:
            for picture in shot:
                for _ in range(fps):
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(picture,
                                                                           format="rgb24")))
        container.mux(stream.encode())
    return path


def test_a_film_where_the_cyclist_comes_back_is_narrated_with_his_name(tmp_path: Path) -> None:
    from models.perception.shots import ShotStage
    from models.pipeline.reader import FrameReader

    film = write_film(tmp_path / "return.mp4", [
        [on_canvas(media.cyclist(), 0.2)] * 3,
        [on_canvas(media.car_man(), 0.75, 340)] * 3,
        [on_canvas(media.cyclist(), 0.8, 260)] * 3,
    ])
    stages = [ShotStage(), PoseStage()]
    composer = Composer()
    said: list[str] = []
    people: list[Observation] = []
    reader = FrameReader(str(film), fps=2.0).start()
    try:
        for frame in reader.frames():
            observations = [o for s in stages for o in s.process(frame.t, frame.image)]
            people += [o for o in observations if o.kind == "people"]
            said += [d.text for d in composer.feed(observations)]
    finally:
        reader.stop()
    ids = [(o.t, [p["id"] for p in o.data["people"]]) for o in people]
    assert len(ids) == 18, ids  # three shots of three seconds at two frames a second
    assert [i for t, i in ids if t < 3] == [[1]] * 6, ids
    assert [i for t, i in ids if 3 <= t < 6] == [[2]] * 6, ids
    assert [i for t, i in ids if t >= 6] == [[1]] * 6, ids
    assert said == ["Someone appears on the left.", "New shot: a person on the right.",
                    "The first person is back, on the right."]
    # A label from a vision-language model is used from then on.
    assert composer.name_person(2, "The man in the dark suit.")
    line = composer.feed([Observation(20.0, "shot", "shot change"),
                          Observation(20.0, "people", "1 person",
                                      data={"people": people[8].data["people"]})])
    assert [d.text for d in line] == ["The man in the dark suit is back, on the right."]


def test_a_seek_rewinds_the_stage_and_keeps_who_is_who(pose: PoseStage) -> None:
    pose.reset()
    people_of(pose, 10.0, on_canvas(media.cyclist(), 0.3))
    people_of(pose, 12.0, on_canvas(media.car_man(), 0.7))
    pose.rewind()  # what the worker does at a seek in the same film
    [back] = people_of(pose, 30.0, on_canvas(media.car_man(), 0.4))
    assert (back["id"], back["new"]) == (2, False)
    [first] = people_of(pose, 31.0, on_canvas(media.cyclist(), 0.6))
    assert (first["id"], first["new"]) == (1, False)


def test_a_seek_rewinds_the_face_stage_and_someone_new_gets_a_new_id() -> None:
    faces = FaceStage()
    assert faces.problem() == ""

    def face_ids(t: float, frame: np.ndarray) -> list[tuple[int, bool]]:
        [obs] = faces.process(t, frame)
        return [(f["id"], f["new"]) for f in obs.data["faces"]]

    assert face_ids(10.0, media.frame_at(5.0)) == [(1, True)]
    assert face_ids(10.5, media.frame_at(5.5)) == [(1, False)]
    faces.rewind()  # what the worker does at a seek in the same film: the tracker starts at 1
    assert face_ids(30.0, on_canvas(grace_hopper(), 0.5, 340)) == [(2, True)]
    faces.rewind()
    assert face_ids(40.0, media.frame_at(6.0)) == [(1, False)]


def test_describe_now_does_not_break_the_lookahead_tracks(pose: PoseStage) -> None:
    """The look-ahead follows the cyclist walking across the picture; "describe now" asks about
    a frame from earlier in the film, with the man in the car. Through the worker, the stages
    look at that frame alone: the cyclist's track and the walk it shows go on, and the man,
    seen there first, is known when the look-ahead gets to him."""
    from models.pipeline.worker import AnalysisWorker, Priority, Request

    pose.reset()
    faces = FaceStage()
    results: list = []
    worker = AnalysisWorker([pose, faces], results.append)

    def ask(t: float, frame: np.ndarray, kind: str = "frame") -> dict[str, dict]:
        priority = Priority.NOW if kind == "now" else Priority.LOOKAHEAD
        worker.submit(Request(priority, t, frame, kind=kind))
        assert worker.wait_idle(60)
        return {o.kind: o.data for o in results[-1].observations}

    crop = media.cyclist()
    walk: list[dict] = []
    walking_faces: list[dict] = []
    try:
        for i in range(6):
            if i == 3:
                now = ask(4.0, on_canvas(media.car_man(), 0.75, 340), kind="now")
                assert [(p["id"], p["new"]) for p in now["people"]["people"]] == [(2, True)]
                [man] = now["faces"]["faces"]
                assert man["new"], now["faces"]
            seen = ask(10.0 + i * 0.2, media.place(media.canvas(), crop, 0.12 + i * 0.085, 300))
            walk += seen["people"]["people"]
            walking_faces += seen["faces"]["faces"]
        car = ask(12.0, on_canvas(media.car_man(), 0.75, 340))
    finally:
        worker.stop()
    assert [(p["id"], p["new"]) for p in walk] == [(1, True)] + [(1, False)] * 5
    # A near body (he fills most of the height) is walking once it has crossed 15% of the
    # frame: from the fourth sample (his first step is shortened by the frame's left edge).
    assert all("walking" in p["gestures"] for p in walk[3:]), [p["gestures"] for p in walk]
    assert not any("walking" in p["gestures"] for p in walk[:2]), [p["gestures"] for p in walk]
    assert [(p["id"], p["new"]) for p in car["people"]["people"]] == [(2, False)]
    assert [(f["id"], f["new"]) for f in car["faces"]["faces"]] == [(man["id"], False)]
    assert man["id"] not in {f["id"] for f in walking_faces}, walking_faces


def test_the_composer_keeps_names_and_labels_after_a_seek() -> None:
    from models.pipeline.composer import Composer
    from models.types import Observation

    def people(t: float, ids: list[int]) -> Observation:
        items = [{"id": i, "position": "left", "distance": "middle", "posture": "standing",
                  "gestures": [], "box": [0.1, 0.2, 0.3, 0.9]} for i in ids]
        return Observation(t, "people", f"{len(ids)}", data={"count": len(ids), "people": items})

    c = Composer()
    for t in (0.0, 0.5, 1.0):
        c.feed([people(t, [1])])
    for t in (1.5, 2.0, 2.5):
        c.feed([people(t, [1, 2])])
    assert c.name_person(2, "the woman with the bicycle")
    c.rewind()
    assert c.label_of(2) == "the woman with the bicycle"
    c.reset()
    assert c.label_of(2) == ""


def test_the_pose_stage_says_the_colour_of_each_persons_clothes(pose: PoseStage) -> None:
    """What lets the composer call someone beyond the first few "the person in red"."""
    pose.reset()
    red = recoloured(media.cyclist(), (170, 30, 30))
    [seen] = people_of(pose, 0.0, on_canvas(red, 0.5))
    assert seen["clothes"] == "red"
    [looked] = pose.look(5.0, on_canvas(red, 0.5))[0].data["people"]
    assert looked["clothes"] == "red"
